"""The password policy and one-time passwords (services/passwords.py)."""
from __future__ import annotations

import pytest

from ticketing.services import passwords


@pytest.mark.parametrize("password", [
    "123456789", "1234567890", "qwertyuiop", "woaini1314", "qq123456789", "1qaz2wsx3edc",
    "a1234567890", "123456789a", "Password2031!", "zzzzzzzzzzzz", "abababababab", "abcdefghijklm",
    "9876543210",
])
def test_short_common_and_patterned_passwords_are_refused(password: str) -> None:
    assert passwords.problem(password) is not None


def test_a_password_holding_the_username_or_phone_is_refused() -> None:
    assert passwords.problem("wangli-secret-door", username="wangli") is not None
    assert passwords.problem("x13912345678x", phone="139 1234 5678") is not None


def test_a_long_uncommon_password_is_accepted() -> None:
    assert passwords.problem("sturdy lamp on a blue bicycle", username="wangli", phone="13912345678") is None


def test_one_time_passwords_pass_the_policy_and_differ() -> None:
    issued = {passwords.one_time_password() for _ in range(50)}
    assert len(issued) == 50
    assert all(passwords.problem(p) is None and len(p) == passwords.ONE_TIME_LENGTH for p in issued)
    assert not set("0o1li").intersection("".join(issued))
