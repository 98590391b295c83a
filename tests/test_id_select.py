"""The select of database ids renders its options once per choices list
(ticketing/forms.py `IdSelect`), and to the byte as WTForms' own select does."""
from __future__ import annotations

from typing import Any

import pytest
from markupsafe import Markup
from wtforms import Form, SelectChoice
from wtforms.widgets import Select

from ticketing.forms import IdChoices, IdSelect, id_select, with_blank

FLAT = [(1, "东怡社区"), (2, 'A & B <"quoted">'), (30, Markup("<b>already safe</b>")),
        (Markup('4"'), "a value marked safe, with a quote")]
GROUPED = {"锦华苑": [(11, "1号楼"), (12, "2号楼")], 'Court "A" & <co>': [(21, "3号楼")]}


class TwoRows(Form):
    first = id_select("First")
    second = id_select("Second")


def rows(choices: Any, first: Any, second: Any) -> TwoRows:
    form = TwoRows(data={"first": first, "second": second})
    shared = with_blank(choices, "Choose…")
    form.first.choices = form.second.choices = shared  # as the drafts' rows share one list
    return form


@pytest.mark.parametrize("choices", [FLAT, GROUPED], ids=["flat", "grouped"])
@pytest.mark.parametrize("data", [None, 2, 12, 21, -1, 999])
def test_the_html_is_wtforms_own(choices: Any, data: Any) -> None:
    form = rows(choices, data, None)
    assert isinstance(form.first.widget, IdSelect) and form.first.choices.options  # the quick way is taken
    for field in (form.first, form.second):
        assert str(field()) == str(Select()(field))
        assert str(field(class_="input", required=True)) == str(Select()(field, class_="input", required=True))


def test_each_field_marks_its_own_choice_in_the_shared_list() -> None:
    form = rows(GROUPED, 11, 21)
    assert '<option selected value="11">1号楼</option>' in form.first()
    assert '<option value="21">3号楼</option>' in form.first()
    assert '<option selected value="21">3号楼</option>' in form.second()
    assert '<option selected value="">Choose…</option>' not in form.second()


def test_choices_with_attributes_of_their_own_are_left_to_wtforms() -> None:
    form = TwoRows(data={"first": 1})
    form.first.choices = IdChoices([SelectChoice("", "—"), SelectChoice(1, "One", render_kw={"disabled": True})])
    assert form.first.choices.options is None
    assert str(form.first()) == str(Select()(form.first))
    assert "disabled" in form.first()
