"""Reference data: time-limit tiers, the category tree, the working-day overrides."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from ticketing.models.people import User


class SlaTier(Model):
    """A time-limit tier (紧急 / 水电气暖 / 一般 / 复杂): accept-by and resolve-by limits.

    Limits are in minutes. On a clock tier they run 24×7; on a working-day tier they
    run only on working days (1 working day = 1,440 working minutes).
    """

    __tablename__ = "sla_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    accept_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)
    working_days: Mapped[bool] = mapped_column(Boolean, default=False)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    # Words that put a request on this tier whatever its category (燃气泄漏, 起火 …),
    # one per line; see services/classify.py.
    trigger_words: Mapped[str] = mapped_column(Text, default="")


class Category(Model):
    """A request category; top-level ones are the groups residents pick from."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    # Plain words for residents ("水管漏了、没水").
    hint_zh: Mapped[str] = mapped_column(Text, default="")
    hint_en: Mapped[str] = mapped_column(Text, default="")
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("sla_tiers.id"))
    keywords: Mapped[str] = mapped_column(Text, default="")
    # Extra questions for this category, as Open311 service attributes:
    # [{"code", "datatype", "required", "description", "order", "values": [{"key", "name"}]}].
    extra_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Whether its tickets are listed (masked) by the keyless Open311 GET requests;
    # private unless an admin says otherwise (services/publication.py).
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What a resident should do at once, before anyone comes (an urgent category: a gas
    # smell, a person trapped in a lift); shown on the form and the confirmation
    # (services/emergency.py). Empty: nothing is shown for the category itself.
    emergency_guidance_zh: Mapped[str] = mapped_column(Text, default="", server_default="")
    emergency_guidance_en: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The numbers to call with it, in order: [{"label": "火警", "number": "119"}].
    emergency_numbers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)

    parent: Mapped[Category | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Category]] = relationship(
        back_populates="parent", order_by="Category.sort_order"
    )
    tier: Mapped[SlaTier | None] = relationship()

    @property
    def group(self) -> Category:
        """The top-level category this one belongs to."""
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    def effective_tier(self) -> SlaTier | None:
        """The tier of this category, else of its nearest ancestor that has one."""
        node: Category | None = self
        while node is not None:
            if node.tier is not None:
                return node.tier
            node = node.parent
        return None


class EmergencyGuide(Model):
    """What to do at once when a request's urgent words describe an emergency (gas, fire,
    a lift, electricity …), whatever its category (services/emergency.py).

    A tier's trigger word belongs to the first guide (by `sort_order`) one of whose
    `markers` it contains ("燃气泄漏" holds "燃气"); the "general" guide takes the
    rest, and its numbers are the ones the start page lists.
    """

    __tablename__ = "emergency_guides"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    # Parts of trigger words, separated by spaces: 燃气 煤气 天然气.
    markers: Mapped[str] = mapped_column(Text, default="")
    guidance_zh: Mapped[str] = mapped_column(Text, default="")
    guidance_en: Mapped[str] = mapped_column(Text, default="")
    numbers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class CalendarDay(Model):
    """An admin's entry in the calendar: a holiday or a working day (调休) that beats
    the package's and the statutory rule's answer for that day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")
    # Who set the entry last, and when; None for entries older than migration 0016.
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    set_by: Mapped[User | None] = relationship(foreign_keys=[set_by_id])


class CalendarYear(Model):
    """A year whose 调休 make-up days an admin has entered and confirmed.

    A year the `chinese-calendar` package knows needs no row: the package carries the
    State Council's schedule. `confirmed_by_id` is None when confirmed from the command line.
    """

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    confirmed_by: Mapped[User | None] = relationship(foreign_keys=[confirmed_by_id])


class ClassificationCorrection(Model):
    """A dispatcher's correction of the category intake guessed; the classifier learns from these."""

    __tablename__ = "classification_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    guessed_category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    chosen_category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    guessed_category: Mapped[Category | None] = relationship(foreign_keys=[guessed_category_id])
    chosen_category: Mapped[Category] = relationship(foreign_keys=[chosen_category_id])
