"""The 人员 (staff) sheet of the workbook: its columns, role names, and the 班次 grammar.

Like the places sheets, the headers, role names and day names are the file format an
office fills in, so they are spelt out here once, in Chinese.

班次 (weekly shifts) grammar, one cell:

    pattern  := segment { (；| ; | new line) segment }      empty: no shifts
    segment  := days  times
    days     := 每天 | 每日 | day-item { (、 | ，| ,) day-item }
    day-item := day | day (至 | 到 | - | ~) day              周五至周一 wraps past Sunday
    day      := (周 | 星期 | 礼拜) (一 二 三 四 五 六 日 天)
    times    := range { (、 | ，| , | space) range }
    range    := H:MM (- | – | — | ~ | 至 | 到) H:MM           end ≤ start: runs past midnight; 24:00 = midnight

Full-width digits, colons and dashes are read as their half-width forms.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import time

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ticketing.models import Role
from ticketing.services.places_workbook import Column, Sheet, split_list

USERNAME, FULL_NAME, MOBILE, ROLE, SCOPE, SHIFTS, ON_CALL = "用户名", "姓名", "手机", "角色", "范围编码", "班次", "值班"
# 角色 as the sheet writes it → Role value.
ROLE_NAMES = {"管理员": Role.ADMIN, "书记主任": Role.SUPERVISOR, "派单员": Role.DISPATCHER,
              "网格员": Role.GRID_WORKER, "物业人员": Role.PROPERTY_STAFF, "志愿者": Role.VOLUNTEER}
ROLE_OF_VALUE: dict[str, str] = {value: name for name, value in ROLE_NAMES.items()}
YES, NO = "是", "否"
YES_NO = {YES: True, NO: False, "": False, "1": True, "0": False}
SCOPE_JOINER = "、"
SCOPE_SEPARATORS = "、，,；;\n\r"

PEOPLE = Sheet("people", "人员", (
    Column(USERNAME, True, _l("Required. The sign-in name: 2–64 letters, digits or . _ - @, unique (upper and "
                              "lower case count as the same). The key an import matches people by.")),
    Column(FULL_NAME, True, _l("Required. The name colleagues see.")),
    Column(MOBILE, False, _l("Optional. Mobile number, digits (e.g. 13812345678).")),
    Column(ROLE, True, _l("Required. One of 管理员, 书记主任, 派单员, 网格员, 物业人员, 志愿者.")),
    Column(SCOPE, True, _l("Required except for 管理员 (leave empty). 书记主任 and 派单员: the code of their "
                           "street or community; 网格员: the code of their grid, several separated by 、; "
                           "物业人员: the code of their property company; 志愿者: the code of their team.")),
    Column(SHIFTS, False, _l(
        "Optional. Weekly shifts: days, then times, e.g. 周一至周五 08:30-17:30；周六 09:00-12:00. Days: "
        "周一 … 周日, a range 周一至周五 (or 到), a list 周一、周三, or 每天. Several times for the same days: "
        "周一至周五 08:30-11:30、14:30-17:30. Separate segments with ； or a new line. An end not after the "
        "start runs past midnight (22:00-06:00). Empty: no shifts — then the person is given tickets only "
        "when 值班 is 是.")),
    Column(ON_CALL, False, _l("Optional. 是: on call, given tickets at any hour whatever the shifts say; "
                              "否 or empty: only during shifts.")),
))

DAY_NUMBERS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
DAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
EVERY_DAY_WORDS = ("每天", "每日")
DAY = r"(?:周|星期|礼拜)([一二三四五六日天])"
DAY_RANGE = re.compile(rf"{DAY}\s*(?:(?:至|到|-|~)\s*{DAY})?")
TIME = r"(\d{1,2}):(\d{2})"
TIME_RANGE = re.compile(rf"{TIME}\s*(?:-|~|至|到)\s*{TIME}")
SEGMENT_SPLIT = re.compile(r"[;\n\r]")
ITEM_SPLIT = re.compile(r"[、,]")
TIMES_SPLIT = re.compile(r"[、,\s]+")

Shift = tuple[int, time, time]  # weekday (0 = Monday), starts, ends (local)


@dataclass(frozen=True)
class PatternError(ValueError):
    """A 班次 cell that does not follow the grammar: what is wrong and where (1-based character)."""

    message: str
    position: int

    def __str__(self) -> str:
        return _("at character %(n)d: %(what)s", n=self.position, what=self.message)


def _normal(text: str) -> str:
    """Full-width digits, colons, dashes and semicolons as half-width; other dashes as '-'."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("–", "-").replace("—", "-").replace("－", "-")


def parse_shifts(text: str) -> list[Shift]:
    """The weekly shifts a 班次 cell describes, in week order; raises PatternError."""
    text = _normal(text or "")
    shifts: set[Shift] = set()
    start = 0
    for piece in SEGMENT_SPLIT.split(text):
        offset = start + len(piece) - len(piece.lstrip())
        start += len(piece) + 1
        if piece.strip():
            shifts.update(_segment(piece.strip(), offset))
    return sorted(shifts)


def _segment(segment: str, offset: int) -> list[Shift]:
    """The shifts of one segment starting at `offset` in the cell."""
    digit = re.search(r"\d", segment)
    if digit is None:
        raise PatternError(_("times missing: give them as 08:30-17:30 after the days"), offset + len(segment) + 1)
    days_text = segment[:digit.start()].strip()
    times_text = re.sub(r"\s*(-|~|至|到)\s*", r"\1", segment[digit.start():])  # "8:30 - 17:30" is one range
    if not days_text:
        raise PatternError(_("days missing: start with e.g. 周一至周五 or 每天"), offset + 1)
    days = _days(days_text, offset)
    ranges = []
    position = offset + digit.start()
    for item in TIMES_SPLIT.split(times_text.strip()):
        ranges.append(_time_range(item, position + times_text.index(item) + 1))
    return [(day, starts, ends) for day in days for starts, ends in ranges]


def _days(text: str, offset: int) -> list[int]:
    """The weekdays of a days part."""
    if text in EVERY_DAY_WORDS:
        return list(range(7))
    days: list[int] = []
    at = 0
    for item in ITEM_SPLIT.split(text):
        position = offset + text.index(item, at) + 1
        at = text.index(item, at) + len(item)
        match = DAY_RANGE.fullmatch(item.strip())
        if match is None:
            raise PatternError(_("%(text)s is not a day: write 周一 … 周日, 周一至周五, 周一、周三 or 每天",
                                 text=item.strip() or "∅"), position)
        first = DAY_NUMBERS[match.group(1)]
        last = DAY_NUMBERS[match.group(2)] if match.group(2) else first
        days.extend((first + n) % 7 for n in range((last - first) % 7 + 1))
    return days


def _time_range(text: str, position: int) -> tuple[time, time]:
    """A range H:MM-H:MM; 24:00 is midnight at its end."""
    match = TIME_RANGE.fullmatch(text)
    if match is None:
        raise PatternError(_("%(text)s is not a time range like 08:30-17:30", text=text), position)
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise PatternError(_("%(text)s is not a time of day", text=text), position)
    starts, ends = time(h1, m1), time(h2 % 24, m2)
    if starts == ends:
        raise PatternError(_("%(text)s ends when it starts; a night shift is e.g. 22:00-06:00", text=text),
                           position)
    return starts, ends


def format_shifts(shifts: list[Shift]) -> str:
    """Shifts as a 班次 cell: days with the same times together, e.g. 周一至周五 08:30-17:30；周六 09:00-12:00."""
    days_of: dict[tuple[time, ...], list[int]] = {}
    times_of: dict[int, list[tuple[time, time]]] = {}
    for day, starts, ends in sorted(shifts):
        times_of.setdefault(day, []).append((starts, ends))
    for day, ranges in times_of.items():
        key = tuple(t for r in ranges for t in r)
        days_of.setdefault(key, []).append(day)
    segments = []
    for key, days in sorted(days_of.items(), key=lambda item: (item[1][0], item[0])):
        times = SCOPE_JOINER.join(f"{key[i]:%H:%M}-{key[i + 1]:%H:%M}" for i in range(0, len(key), 2))
        segments.append(f"{format_days(days)} {times}")
    return "；".join(segments)


def format_days(days: list[int]) -> str:
    """Weekdays as 每天, 周一至周五, 周一、周三 or a mix."""
    if len(days) == 7:
        return EVERY_DAY_WORDS[0]
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}至{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[day] for day in run)
    return SCOPE_JOINER.join(parts)


def split_codes(text: str) -> list[str]:
    """The codes of a 范围编码 cell, trimmed, without blanks or repeats."""
    return split_list(text, SCOPE_SEPARATORS)
