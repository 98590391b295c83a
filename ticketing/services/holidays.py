"""China's public holidays: the State Council's schedule where `chinese-calendar` has
it, else the statutory holidays computed from the law.

`chinese-calendar` carries each year's schedule (holidays and 调休 make-up working
days) as published by the State Council, for the years up to its release. For a
later year the holidays of 《全国年节及纪念日放假办法》 as revised in 2024 are computed
(元旦 1 Jan; 春节 除夕 and 初一–初三; 清明; 劳动节 1–2 May; 端午; 中秋; 国庆 1–3 Oct)
with `lunar-python`. The make-up working days cannot be computed: an admin enters
them (services/calendar_admin.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

from chinese_calendar import Holiday
from chinese_calendar import holidays as PACKAGE_HOLIDAYS
from chinese_calendar import workdays as PACKAGE_WORKDAYS
from lunar_python import Lunar, Solar

# Where a day's answer comes from: the package's schedule, the statutory rule, an admin.
PACKAGE, STATUTORY, ADMIN = "package", "statutory", "admin"

FIRST_PACKAGE_YEAR = min(PACKAGE_HOLIDAYS).year
LAST_PACKAGE_YEAR = max(PACKAGE_HOLIDAYS).year
DAY = timedelta(days=1)


def package_knows(year: int) -> bool:
    """True when `chinese-calendar` has the State Council's schedule for the year."""
    return FIRST_PACKAGE_YEAR <= year <= LAST_PACKAGE_YEAR


def lunar_day(year: int, month: int, day: int) -> date:
    """The Gregorian date of a day of the (non-leap) lunar month in lunar year `year`."""
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def qingming(year: int) -> date:
    """The day of the solar term 清明 (Pure Brightness) in `year`: 4, 5 or 6 April."""
    # The lunar year that contains 1 April has this year's 清明 in its table.
    term = Solar.fromYmd(year, 4, 1).getLunar().getJieQiTable()["清明"]
    return date(term.getYear(), term.getMonth(), term.getDay())


@lru_cache(maxsize=256)
def statutory_holidays(year: int) -> Mapping[date, Holiday]:
    """The statutory holidays of a Gregorian year under the 2024 rules, day → holiday.

    Cached per year: the working-day calendar asks for every day it walks over.
    """
    spring = lunar_day(year, 1, 1)  # 初一; 除夕 is the day before, whether month 12 has 29 or 30 days
    days: dict[date, Holiday] = {date(year, 1, 1): Holiday.new_years_day}
    days.update({spring + DAY * offset: Holiday.spring_festival for offset in range(-1, 3)})
    days[qingming(year)] = Holiday.tomb_sweeping_day
    days.update({date(year, 5, d): Holiday.labour_day for d in (1, 2)})
    days[lunar_day(year, 5, 5)] = Holiday.dragon_boat_festival
    days.update({date(year, 10, d): Holiday.national_day for d in (1, 2, 3)})
    # 中秋 can fall on 1–3 October (2028, 2036): the day is one holiday, not two.
    days.setdefault(lunar_day(year, 8, 15), Holiday.mid_autumn_festival)
    return MappingProxyType(days)


def official_workday(day: date) -> bool:
    """The State Council's answer where the package has it, else the statutory rule.

    For a year without the package's data only the statutory holidays differ from
    Monday–Friday: its make-up working days are whatever the admin entered.
    """
    if package_knows(day.year):
        # The package's own rule (chinese_calendar.is_workday) without its range check,
        # which scans the whole table on every call.
        return day in PACKAGE_WORKDAYS or (day.weekday() < 5 and day not in PACKAGE_HOLIDAYS)
    return day.weekday() < 5 and day not in statutory_holidays(day.year)


def official_holiday_of(day: date) -> Holiday | None:
    """The holiday a day belongs to (or makes up for, on a 调休 working day), if any."""
    if package_knows(day.year):
        name = PACKAGE_HOLIDAYS.get(day) or PACKAGE_WORKDAYS.get(day)
        return Holiday(name) if name else None
    return statutory_holidays(day.year).get(day)


def official_source(year: int) -> str:
    """Where the official answer for a year comes from: `package` or `statutory`."""
    return PACKAGE if package_knows(year) else STATUTORY
