"""Import the 人员 (staff) sheet: check every row, plan, then write all or nothing.

Usernames are the keys (upper and lower case alike). A username Minhu does not know
becomes an account with a one-time password, to be changed at first sign-in; a known
one whose name, phone, role, scope, shifts or on-call flag differ is changed; one with
nothing different is left alone, so importing the same sheet twice changes nothing.
An account the sheet lacks is only reported: an import never deletes nor
deactivates, nor reactivates. Any problem and nothing is written.

Accounts are created and changed through services/accounts.py, so the role and scope
rules, the password rules and the audit log apply exactly as on the account pages;
shifts go through services/rosters.py as on the roster page. Who imports matters: an
admin (or the shell) may do anything, a supervisor only what the account pages let
them do, checked per row so that every refusal is listed with its row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import HANDLER_ROLES, Role, User
from ticketing.services import accounts, audit, rosters, scope
from ticketing.services.errors import ValidationFailed
from ticketing.services.places_import import Entry, ImportReport
from ticketing.services.places_workbook import Problem, Row, read_workbook
from ticketing.services.staff_snapshot import Account, Place, Places, load_accounts, load_places
from ticketing.services.staff_workbook import (
    FULL_NAME,
    MOBILE,
    NO,
    ON_CALL,
    PEOPLE,
    ROLE,
    ROLE_NAMES,
    ROLE_OF_VALUE,
    SCOPE,
    SCOPE_JOINER,
    SHIFTS,
    USERNAME,
    YES,
    YES_NO,
    PatternError,
    Shift,
    format_shifts,
    parse_shifts,
    split_codes,
)

# The kind of place each role's scope names (admins have none); keyed by role value.
SCOPE_KINDS: dict[str, tuple[str, ...]] = {
    Role.SUPERVISOR: ("street", "community"), Role.DISPATCHER: ("street", "community"),
    Role.GRID_WORKER: ("grid",), Role.PROPERTY_STAFF: ("company",), Role.VOLUNTEER: ("team",),
}
SHEET_OF_KIND = {"street": "街道", "community": "社区", "grid": "网格", "company": "物业公司", "team": "队伍"}
# A field of AccountData's errors → the column it came from.
FIELD_COLUMNS = {"username": USERNAME, "display_name": FULL_NAME, "phone": MOBILE, "role": ROLE,
                 "scope": SCOPE, "grids": SCOPE, "company_id": SCOPE, "team_id": SCOPE}


@dataclass
class StaffReport(ImportReport):
    """An import's report, and the one-time passwords of the accounts it created:
    (username, name, password), to be shown once and never kept."""

    one_time: list[tuple[str, str, str]] = field(default_factory=list)


class RowRefused(Exception):
    """The account service refused a row while writing (its checks run again there)."""

    def __init__(self, row: Row, errors: dict[str, Any]) -> None:
        super().__init__(row.number)
        self.row, self.errors = row, errors


@dataclass
class Wanted:
    """What a row says about a person; None for an optional column the sheet lacks."""

    row: Row
    username: str
    data: accounts.AccountData
    scope: str
    shifts: list[Shift] | None
    on_call: bool | None


class StaffPlanner:
    """Checks the rows against each other, against Minhu and against what the importer may do."""

    def __init__(self, rows: list[Row], actor: User | None) -> None:
        self.rows, self.actor = rows, actor
        self.places: Places = load_places()
        self.accounts: dict[str, Account] = load_accounts()
        self.wanted: list[Wanted] = []
        self.problems: list[Problem] = []
        self.given = accounts.roles_given_by(actor)
        self.managed: set[int] | None = None if actor is None or actor.role == Role.ADMIN else set(
            db.session.scalars(select(User.id).where(scope.managed_people(actor))))

    def problem(self, row: Row, header: str, message: str) -> None:
        self.problems.append(Problem(row.sheet, row.number, header, message))

    def read(self) -> None:
        """Every row: required cells, formats, role, scope, shifts, and repeated usernames."""
        seen: dict[str, int] = {}
        for row in self.rows:
            count = len(self.problems)
            for column in (USERNAME, FULL_NAME, ROLE):
                if column in row.cells and not row.get(column):  # a missing column is reported once
                    self.problem(row, column, _("a required cell is empty"))
            username = row.get(USERNAME)
            if username and not accounts.USERNAME.fullmatch(username):
                self.problem(row, USERNAME, _("use 2–64 letters, digits or . _ - @"))
            elif username.lower() in seen:
                self.problem(row, USERNAME, _("username %(name)s is used already in row %(row)s",
                                              name=username, row=seen[username.lower()]))
            if username:
                seen.setdefault(username.lower(), row.number)
            name = " ".join(row.get(FULL_NAME).split())
            if len(name) > accounts.MAX_NAME:
                self.problem(row, FULL_NAME, _("longer than %(n)s characters", n=accounts.MAX_NAME))
            if row.get(MOBILE) and not accounts.PHONE.fullmatch(row.get(MOBILE)):
                self.problem(row, MOBILE, _("not a phone number: use digits, e.g. 13812345678"))
            role = ROLE_NAMES.get(row.get(ROLE))
            if row.get(ROLE) and role is None:
                self.problem(row, ROLE, _("must be one of %(roles)s", roles=" / ".join(ROLE_NAMES)))
            elif role is not None and role not in self.given:
                self.problem(row, ROLE, _("you may not give the role %(role)s", role=row.get(ROLE)))
            shifts, on_call = self.roster(row, role)
            data = self.scope_of(row, role, name) if role is not None else None
            if data is not None and len(self.problems) == count:
                scope_text = SCOPE_JOINER.join(sorted(split_codes(row.get(SCOPE))))
                self.wanted.append(Wanted(row, username, data, scope_text, shifts, on_call))

    def roster(self, row: Row, role: str | None) -> tuple[list[Shift] | None, bool | None]:
        """The row's shifts and on-call flag (None: column absent); only handlers have them."""
        shifts: list[Shift] | None = None
        if SHIFTS in row.cells:
            try:
                shifts = parse_shifts(row.get(SHIFTS))
                rosters.check_shifts([rosters.ShiftInput(d, f"{s:%H:%M}", f"{e:%H:%M}") for d, s, e in shifts])
            except PatternError as exc:
                self.problem(row, SHIFTS, str(exc))
            except ValidationFailed:
                self.problem(row, SHIFTS, _("two of the shifts overlap"))
        on_call = None
        if ON_CALL in row.cells:
            on_call = YES_NO.get(row.get(ON_CALL))
            if on_call is None:
                self.problem(row, ON_CALL, _("must be %(yes)s or %(no)s", yes=YES, no=NO))
        if role is not None and role not in HANDLER_ROLES:
            if shifts:
                self.problem(row, SHIFTS, _("only 网格员, 物业人员 and 志愿者 have shifts"))
            if on_call:
                self.problem(row, ON_CALL, _("only 网格员, 物业人员 and 志愿者 are on call"))
        return shifts, on_call

    def scope_of(self, row: Row, role: str, name: str) -> accounts.AccountData | None:
        """The account data of a row whose role is known; None (and problems) when its scope is wrong."""
        codes = split_codes(row.get(SCOPE))
        base = accounts.AccountData(display_name=name, role=role, phone=row.get(MOBILE))
        if role == Role.ADMIN:
            if codes:
                self.problem(row, SCOPE, _("an administrator has no scope: leave it empty"))
                return None
            return base
        if not codes:
            if SCOPE in row.cells:
                self.problem(row, SCOPE, _("a required cell is empty"))
            return None
        if role != Role.GRID_WORKER and len(codes) > 1:
            self.problem(row, SCOPE, _("give one code, not %(n)d", n=len(codes)))
            return None
        found: list[Place] = []
        for code in codes:
            place = next((self.places.by_kind[k][code] for k in SCOPE_KINDS[role] if code in self.places.by_kind[k]),
                         None)
            if place is not None:
                found.append(place)
                continue
            others = self.places.kinds_of(code)
            wanted = " / ".join(SHEET_OF_KIND[k] for k in SCOPE_KINDS[role])
            if others:
                self.problem(row, SCOPE, _("%(code)s is a %(kind)s code; %(role)s needs a %(wanted)s code",
                                           code=code, kind=SHEET_OF_KIND[others[0]], role=row.get(ROLE),
                                           wanted=wanted))
            else:
                self.problem(row, SCOPE, _("unknown %(wanted)s code %(code)s (import the places first)",
                                           wanted=wanted, code=code))
        if len(found) != len(codes):
            return None
        if not self.within_actor(role, found):
            self.problem(row, SCOPE, _("outside your community or street"))
            return None
        first = found[0]
        if first.kind == "street":
            return accounts.AccountData(name, role, row.get(MOBILE), street_id=first.id)
        if first.kind == "community":
            return accounts.AccountData(name, role, row.get(MOBILE), community_id=first.id)
        if first.kind == "grid":
            return accounts.AccountData(name, role, row.get(MOBILE), grid_ids=tuple(p.id for p in found))
        if first.kind == "company":
            return accounts.AccountData(name, role, row.get(MOBILE), company_id=first.id,
                                        street_id=self.company_street(row, first))
        return accounts.AccountData(name, role, row.get(MOBILE), team_id=first.id)

    def company_street(self, row: Row, company: Place) -> int | None:
        """The street of property staff: as it is, else the one street the company works in."""
        known = self.accounts.get(row.get(USERNAME).lower())
        if known is not None and known.role == Role.PROPERTY_STAFF and known.street_id is not None:
            return known.street_id
        streets = self.places.company_streets.get(company.id, set())
        if self.actor is not None and self.actor.street_id in streets:
            return self.actor.street_id
        return next(iter(streets)) if len(streets) == 1 else None

    def within_actor(self, role: str, found: list[Place]) -> bool:
        """True when a supervisor importing may give this scope (admins and the shell: always)."""
        actor = self.actor
        if self.managed is None or actor is None:
            return True
        if actor.community_id is not None:
            mine = {actor.community_id}
        else:
            mine = {p.id for p in self.places.by_kind["community"].values() if p.street_id == actor.street_id}
        if role == Role.PROPERTY_STAFF:
            return actor.community_id is None and actor.street_id in self.places.company_streets.get(found[0].id, ())
        if found[0].kind == "street":
            return actor.community_id is None and found[0].id == actor.street_id
        return all(place.community_id in mine for place in found)

    def plan(self, report: StaffReport) -> None:
        """Sort every row into added, changed or unchanged, and list the accounts the sheet lacks."""
        streets: set[int | None] = set()
        for wanted in self.wanted:
            known = self.accounts.get(wanted.username.lower())
            if known is not None and self.managed is not None and known.id not in self.managed:
                self.problem(wanted.row, USERNAME, _("the account %(name)s is not one you manage",
                                                     name=known.username))
                continue
            streets.add(self.street_of(wanted))
            if known is None:
                report.added.append(Entry(PEOPLE.title, wanted.username, wanted.data.display_name))
                continue
            changes = [(column, before, after) for column, before, after in compare(known, wanted) if before != after]
            if changes:
                report.changed.append(Entry(PEOPLE.title, known.username, wanted.data.display_name, changes))
            else:
                report.unchanged += 1
        listed = {w.username.lower() for w in self.wanted}
        for key, known in sorted(self.accounts.items()):
            if key in listed or not known.active or (self.managed is not None and known.id not in self.managed):
                continue
            if known.street_id in streets or self.managed is not None:
                report.missing.append(Entry(PEOPLE.title, known.username, known.name))

    def street_of(self, wanted: Wanted) -> int | None:
        """The street a row's account lies in (None for admins)."""
        data = wanted.data
        for kind, ids in (("community", (data.community_id,)), ("grid", data.grid_ids), ("team", (data.team_id,))):
            for place_id in ids:
                place = self.places.by_id(kind, place_id)
                if place is not None:
                    return place.street_id
        return data.street_id


def compare(known: Account, wanted: Wanted) -> list[tuple[str, str, str]]:
    """(column, before, after) for each column the row has, as the sheet would show them."""
    pairs = [(FULL_NAME, known.name, wanted.data.display_name),
             (ROLE, ROLE_OF_VALUE.get(known.role, known.role), ROLE_OF_VALUE[wanted.data.role]),
             (SCOPE, known.scope, wanted.scope)]
    if MOBILE in wanted.row.cells:
        pairs.append((MOBILE, known.phone, wanted.data.phone))
    if wanted.shifts is not None:
        pairs.append((SHIFTS, format_shifts(known.shifts), format_shifts(wanted.shifts)))
    if wanted.on_call is not None:
        pairs.append((ON_CALL, YES if known.on_call else NO, YES if wanted.on_call else NO))
    return pairs


def import_staff(workbook: str | IO[bytes], actor: User | None, now: datetime, dry_run: bool = False,
                 password_hash: str | None = None) -> StaffReport:
    """Check the 人员 sheet, then write it in one transaction unless a problem was found or
    `dry_run`; the report says what was (or would be) done, with the one-time passwords
    of new accounts. `actor` None is the shell. `password_hash` is for the demo only: new
    accounts get that (published) password instead of one-time ones."""
    report = StaffReport()
    rows, report.problems = read_workbook(workbook, (PEOPLE,))
    if not report.problems and not rows.get(PEOPLE.key):
        report.problems.append(Problem(PEOPLE.title, 0, "", _("the workbook has no sheet 人员 or it is empty")))
    planner = StaffPlanner(rows.get(PEOPLE.key, []), actor)
    planner.read()
    planner.plan(report)
    report.problems += planner.problems
    if report.problems or dry_run:
        return report
    try:
        apply(planner, report, now, password_hash)
        record_import(report, actor, now)
        db.session.commit()
    except RowRefused as exc:  # the pages' rules said no after all: nothing is kept
        db.session.rollback()
        report.one_time.clear()
        for name, message in exc.errors.items():
            report.problems.append(Problem(PEOPLE.title, exc.row.number, FIELD_COLUMNS.get(name, ""), str(message)))
        return report
    except Exception:
        db.session.rollback()
        raise
    report.applied = True
    return report


def apply(planner: StaffPlanner, report: StaffReport, now: datetime, password_hash: str | None = None) -> None:
    """Create and change the planned accounts and rosters through the services (no commit)."""
    actor = planner.actor
    changed = {e.code.lower(): {c for c, _b, _a in e.changes} for e in report.changed}
    added = {e.code.lower() for e in report.added}
    for wanted in planner.wanted:
        key = wanted.username.lower()
        try:
            if key in added:
                person, one_time = accounts.create_account(actor, wanted.username, wanted.data, now,
                                                           password_hash=password_hash)
                if one_time is not None:
                    report.one_time.append((person.username, person.display_name, one_time))
                if wanted.shifts or wanted.on_call:
                    _save_roster(actor, person, wanted, now, None)
            elif key in changed:
                person = db.session.get_one(User, planner.accounts[key].id)
                columns = changed[key]
                if columns & {FULL_NAME, ROLE, SCOPE, MOBILE}:
                    accounts.update_account(actor, person, _keep_phone(wanted, person), now)
                if columns & {SHIFTS, ON_CALL}:
                    _save_roster(actor, person, wanted, now, rosters.roster_record(person))
        except ValidationFailed as exc:
            raise RowRefused(wanted.row, exc.errors) from exc


def _keep_phone(wanted: Wanted, person: User) -> accounts.AccountData:
    """The row's data, with the phone as it is when the sheet has no 手机 column."""
    if MOBILE in wanted.row.cells:
        return wanted.data
    data = wanted.data
    return accounts.AccountData(data.display_name, data.role, person.phone or "", data.street_id,
                                data.community_id, data.grid_ids, data.company_id, data.team_id)


def _save_roster(actor: User | None, person: User, wanted: Wanted, now: datetime,
                 before: dict[str, Any] | None) -> None:
    """Write the row's shifts and on-call flag (those the sheet has) and put it on the audit log."""
    shifts = wanted.shifts if wanted.shifts is not None else [
        (s.weekday, s.starts, s.ends) for s in rosters.shifts_of([person.id])[person.id]]
    on_call = wanted.on_call if wanted.on_call is not None else bool(person.on_call)
    rosters.save_roster(person, [rosters.ShiftInput(d, f"{s:%H:%M}", f"{e:%H:%M}") for d, s, e in shifts], on_call)
    via, label = ("web", None) if actor is not None else ("cli", audit.shell_user())
    audit.record(actor, "roster.update", "user", person.id, person.display_name, before,
                 rosters.roster_record(person), now, via=via, actor_label=label)


AUDITED_CHANGES = 500  # changed people listed one by one in the audit entry; the rest are counted


def record_import(report: StaffReport, actor: User | None, now: datetime) -> None:
    """The audit entry of an applied import: who was added and what changed (never a password)."""
    via, label = ("web", None) if actor is not None else ("cli", audit.shell_user())
    changes = {e.code: {column: [old, new] for column, old, new in e.changes} for e in report.changed[:AUDITED_CHANGES]}
    audit.record(actor, "import.apply", "people", None, "staff workbook", None,
                 {"added": [e.code for e in report.added[:AUDITED_CHANGES]], "added_count": len(report.added),
                  "changed_count": len(report.changed), "unchanged": report.unchanged, "changes": changes},
                 now, via=via, actor_label=label)
