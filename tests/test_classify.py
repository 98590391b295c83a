"""Reading free text: the mobile number in it."""
from __future__ import annotations

import pytest

from ticketing.services.classify import phone_in_text


@pytest.mark.parametrize("text,phone", [
    ("电话 138-1234-5678 谢谢", "13812345678"),
    ("+86 13812345678", "13812345678"),
    ("找我：＋86 13900001111", "13900001111"),
    ("１３８１２３４５６７８", "13812345678"),
    ("订单 113812345678", None),
    ("门牌 12345678901234", None),
    ("no number", None),
    ("没有电话", None),
])
def test_the_first_mobile_number_in_a_text_is_found(text: str, phone: str | None) -> None:
    assert phone_in_text(text) == phone
