"""What the staff API accepts, field by field: JSON bodies and query strings.

Each field is a small spec that both reads a value (or says what is wrong with it)
and describes itself as JSON Schema. The OpenAPI document (ticketing/api/openapi.py)
is built from these same specs, so the documented bounds are the enforced ones.
Business rules stay in the services; this only checks shapes and bounds, so that
nothing malformed reaches the database (a NUL byte, a number past 2³¹).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from ticketing.api.errors import ApiError, validation_failed
from ticketing.forms import MAX_ID

MAX_BODY_BYTES = 64 * 1024
# Ticket numbers are "261121-0042"; anything else is looked up as nothing at all.
NUMBER_PATTERN = r"^[0-9A-Za-z-]{1,20}$"
NUMBER = re.compile(NUMBER_PATTERN)
BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
NUL_PATTERN = r"\x00"
# Characters that are not text to read: Python's whitespace (str.split, str.strip) and the
# control characters intake removes. Spelled out, so that Python and the ECMA 262 regexes of
# JSON Schema validators read these patterns alike (their \s differ).
BLANK = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
CONTROL = r"\x00-\x08\x0b-\x1f\x7f"
# Some character besides whitespace (a note that strip() leaves non-empty) ...
NOT_BLANK_PATTERN = rf"^[\s\S]*[^{BLANK}][\s\S]*$"
# ... or besides whitespace and control characters (text intake's clean_text leaves non-empty).
VISIBLE_PATTERN = rf"^[\s\S]*[^{BLANK}{CONTROL}][\s\S]*$"
# A category code is never all digits: in a query string, digits are an id.
CODE_PATTERN = r"^[\s\S]*[^0-9][\s\S]*$"
DIGITS = re.compile(r"[0-9]+")
# RFC 3339 date-time (what JSON Schema's format means) with seconds up to 59, in the years
# 1000-2999 (so that no offset takes it past what Python's datetime holds).
_HOUR, _MINUTE = "(?:[01][0-9]|2[0-3])", "[0-5][0-9]"
MOMENT_PATTERN = (rf"^[12][0-9]{{3}}-[0-9]{{2}}-[0-9]{{2}}[Tt]{_HOUR}:{_MINUTE}:{_MINUTE}(?:\.[0-9]+)?"
                  rf"(?:[Zz]|[+-]{_HOUR}:{_MINUTE})$")
MOMENT = re.compile(MOMENT_PATTERN)
# RFC 3339 full-date in the same years; whether the day exists is date.fromisoformat's call.
DAY_PATTERN = r"^[12][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"
DAY = re.compile(DAY_PATTERN)


class FieldError(Exception):
    """One field's value is not acceptable; `message` says why."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class Spec:
    """A field: how to read it from JSON and from a query string, and its JSON Schema."""

    description: str = ""

    def from_json(self, value: Any) -> Any:
        raise NotImplementedError

    def from_text(self, text: str) -> Any:
        """A query-string value (always text)."""
        return self.from_json(text)

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def documented(self) -> dict[str, Any]:
        """The schema with the description."""
        out = self.schema()
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Text(Spec):
    """A string of bounded length, optionally matching a pattern (`problem` says why not)."""

    max_length: int = 200
    min_length: int = 0
    pattern: str | None = None
    problem: Any = None

    def from_json(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldError(_l("Must be a string."))
        if BAD_TEXT.search(value):
            raise FieldError(_l("Contains characters that are not valid text."))
        if len(value) > self.max_length:
            raise FieldError(_l("At most %(n)d characters.", n=self.max_length))
        if len(value) < self.min_length:
            raise FieldError(_l("Must not be empty."))
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise FieldError(self.problem or _l("Not in the expected format."))
        return value

    def schema(self) -> dict[str, Any]:
        # No NUL byte (BAD_TEXT); lone surrogates are not Unicode text, so no schema can name them.
        out: dict[str, Any] = {"type": "string", "maxLength": self.max_length,
                               "not": {"type": "string", "pattern": NUL_PATTERN}}
        if self.min_length:
            out["minLength"] = self.min_length
        if self.pattern is not None:
            out["pattern"] = self.pattern
        return out


def _out_of_range(minimum: float, maximum: float) -> FieldError:
    return FieldError(_l("Must be between %(min)s and %(max)s.", min=minimum, max=maximum))


@dataclass(frozen=True)
class Integer(Spec):
    """A whole number in a range (ids: 1 … 2³¹−1, what the database can hold).

    JSON Schema's integer is a value, not a spelling: 3.0 and 3e0 are the integer 3 (and the
    OpenAPI document cannot say otherwise), so they are read as 3.
    """

    minimum: int = 1
    maximum: int = MAX_ID

    def from_json(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise FieldError(_l("Must be a whole number."))
        if not self.minimum <= value <= self.maximum:
            raise _out_of_range(self.minimum, self.maximum)
        return value

    def from_text(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,12}", text):
            raise FieldError(_l("Must be a whole number."))
        return self.from_json(int(text))

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Number(Spec):
    """A finite number in a range (latitude, longitude)."""

    minimum: float = 0
    maximum: float = 0

    def from_json(self, value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise FieldError(_l("Must be a number."))
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            number = math.nan
        if not math.isfinite(number):
            number = math.nan
        if not self.minimum <= number <= self.maximum:
            raise _out_of_range(self.minimum, self.maximum)
        return number

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Boolean(Spec):
    """true or false (in a query string: the words)."""

    def from_json(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FieldError(_l("Must be true or false."))
        return value

    def from_text(self, text: str) -> bool:
        if text not in ("true", "false"):
            raise FieldError(_l("Must be true or false."))
        return text == "true"

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Spec):
    """One of a fixed list of codes."""

    values: tuple[str, ...] = ()

    def from_json(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise FieldError(_l("Must be one of: %(values)s.", values=", ".join(self.values)))
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class Choices(Spec):
    """Several codes of a fixed list: a repeated query parameter, or one with commas."""

    values: tuple[str, ...] = ()

    def from_json(self, value: Any) -> list[str]:
        texts = value if isinstance(value, list) else [value]
        found: list[str] = []
        for text in texts:
            for part in str(text).split(","):
                found.append(Choice(values=self.values).from_json(part))
        return found

    def schema(self) -> dict[str, Any]:
        one = "|".join(re.escape(value) for value in self.values)
        return {"type": "array", "items": {"type": "string", "pattern": f"^(?:{one})(?:,(?:{one}))*$"}}


@dataclass(frozen=True)
class CategoryRef(Spec):
    """A category by its code ("repair.stair_light") or its id; in a query string, digits are an id."""

    def from_json(self, value: Any) -> int | str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return Integer().from_json(value)
        return CATEGORY_CODE.from_json(value)

    def from_text(self, text: str) -> int | str:
        return Integer().from_text(text) if DIGITS.fullmatch(text) else self.from_json(text)

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [CATEGORY_CODE.schema(), Integer().schema()]}


CATEGORY_CODE = Text(max_length=64, min_length=1, pattern=CODE_PATTERN)


@dataclass(frozen=True)
class Moment(Spec):
    """An RFC 3339 date and time with its zone, e.g. 2026-11-18T10:00:00+08:00; read as UTC.

    Exactly JSON Schema's date-time, but for leap seconds, which Python cannot represent, and
    years outside 1000-2999; not the other spellings of ISO 8601 that fromisoformat also
    reads (20261118T100000+0800).
    """

    def from_json(self, value: Any) -> datetime:
        problem = FieldError(
            _l("Give a date and time with its time zone, e.g. 2026-11-18T10:00:00+08:00.")
        )
        if not isinstance(value, str) or len(value) > 40 or not MOMENT.fullmatch(value):
            raise problem
        try:
            moment = datetime.fromisoformat(value.upper())  # fromisoformat reads no t or z
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise problem
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise problem from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "maxLength": 40, "pattern": MOMENT_PATTERN}


@dataclass(frozen=True)
class Day(Spec):
    """A calendar date, YYYY-MM-DD (JSON Schema's full-date), e.g. 2026-11-20; read as a date."""

    def from_json(self, value: Any) -> date:
        problem = FieldError(_l("Give a date as YYYY-MM-DD, e.g. 2026-11-20."))
        if not isinstance(value, str) or not DAY.fullmatch(value):
            raise problem
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise problem from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date", "maxLength": 10, "pattern": DAY_PATTERN}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, also allowing null (an optional field may be sent as null)."""
    out = dict(schema)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    if isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    elif "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


@dataclass(frozen=True)
class Body:
    """A JSON object body: its fields, which are required; unknown fields are refused."""

    fields: dict[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)

    def read(self, data: Any) -> dict[str, Any]:
        """The fields sent (null counts as not sent), or 422 with every problem at once."""
        if not isinstance(data, dict):
            raise ApiError(400, _l("The body must be a JSON object."))
        errors: dict[str, Any] = {name[:64]: _l("Unknown field.") for name in data if name not in self.fields}
        values: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if data.get(name) is None:
                if name in self.required:
                    errors[name] = _l("Required.")
                continue
            try:
                values[name] = spec.from_json(data[name])
            except FieldError as exc:
                errors[name] = exc.message
        if errors:
            raise validation_failed(errors)
        return values

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the body."""
        return {
            "type": "object",
            "properties": {
                name: spec.documented() if name in self.required else nullable(spec.documented())
                for name, spec in self.fields.items()
            },
            "required": [name for name in self.fields if name in self.required],
            "additionalProperties": False,
        }


@dataclass(frozen=True)
class Query:
    """Query parameters; `repeatable` ones may be given several times. Others are ignored.

    A parameter given empty (`category=`) is refused like any other value its spec refuses:
    leave it out to not filter.
    """

    params: dict[str, Spec]
    repeatable: frozenset[str] = field(default_factory=frozenset)

    def read(self, args: MultiDict[str, str]) -> dict[str, Any]:
        """The parameters given, or 422."""
        errors: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for name, spec in self.params.items():
            given = args.getlist(name)
            if not given:
                continue
            try:
                if "" in given:
                    raise FieldError(_l("Must not be empty."))
                values[name] = spec.from_json(given) if name in self.repeatable else spec.from_text(given[0])
            except FieldError as exc:
                errors[name] = exc.message
        if errors:
            raise validation_failed(errors)
        return values


def read_json() -> Any:
    """The request's JSON body: 415 unless it is JSON, 413 past 64 KB, 400 if malformed."""
    if request.mimetype != "application/json":
        raise ApiError(415)
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(413)
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413)
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, _l("The body is not valid JSON.")) from None


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, though Python's parser takes them."""
    raise ValueError(name)
