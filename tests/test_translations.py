"""Every UI string has a Chinese translation, and the switch to English works."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "ticketing" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
METHODS = [("ticketing/**.py", "python"), ("templates/**.html", "jinja2")]


def extracted_ids() -> set[str]:
    """The msgids the code and templates use today."""
    ids: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS
    ):
        ids.add(message[0] if isinstance(message, (tuple, list)) else message)
    return ids


def test_every_ui_string_has_a_chinese_translation() -> None:
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    missing = sorted(extracted_ids() - translated)
    assert missing == [], "run `make messages` and translate: " + "; ".join(missing[:20])


def test_pages_are_chinese_by_default_and_english_on_request(client: FlaskClient) -> None:
    assert "登录".encode() in client.get("/auth/login").data
    client.get("/lang/en")
    assert b"Staff sign-in" in client.get("/auth/login").data
