"""The group-chat drafts' inputs are written by `quick_html_params` (ticketing/forms.py),
to the byte as WTForms writes them."""
from __future__ import annotations

from typing import Any

import pytest
from markupsafe import Markup
from wtforms import BooleanField, Form, HiddenField, StringField, TelField
from wtforms.widgets import html_params

from ticketing.forms import (
    QuickCheckboxInput,
    QuickHiddenInput,
    QuickTelInput,
    QuickTextInput,
    quick_html_params,
)

CASES: list[dict[str, Any]] = [
    {},
    {"name": "rows-0-key", "id": "rows-0-key", "type": "hidden", "value": "0" * 32},
    {"class_": "input", "value": 'a & b <"c"> \'d\'', "required": True, "disabled": False},
    {"data_row_index": 3, "aria_described_by": "hint", "for_": "x", "checked": True},
    {"value": Markup('<b title="t">safe</b>'), "placeholder": "13812345678 / 0371-12345678"},
    {"value": None, "maxlength": 2000, "z": 0, "a": 1.5, "inputmode": "tel", "autocomplete": "off"},
    {"weird<name>": "x", "label": "锦华苑 & 东区"},
]


@pytest.mark.parametrize("params", CASES)
def test_quick_html_params_writes_what_wtforms_writes(params: dict[str, Any]) -> None:
    assert quick_html_params(**params) == str(html_params(**params))


class Row(Form):
    include = BooleanField("File", default=True, widget=QuickCheckboxInput())
    key = HiddenField(widget=QuickHiddenInput())
    phone = TelField("Phone", widget=QuickTelInput())
    name = StringField("Name", widget=QuickTextInput())


class WtformsRow(Form):
    include = BooleanField("File", default=True)
    key = HiddenField()
    phone = TelField("Phone")
    name = StringField("Name")


@pytest.mark.parametrize("data", [
    {"include": True, "key": "ab" * 16, "phone": "13812345678", "name": '张阿姨 <"x">'},
    {"include": False, "key": "", "phone": "", "name": ""},
])
def test_the_quick_inputs_render_as_wtforms_own(data: dict[str, Any]) -> None:
    quick, plain = Row(data=data), WtformsRow(data=data)
    for name in ("include", "key", "phone", "name"):
        assert str(quick[name]()) == str(plain[name]())
        extra = {"class_": "input", "inputmode": "tel", "autocomplete": "off", "placeholder": "1 / 2"}
        assert str(quick[name](**extra)) == str(plain[name](**extra))
