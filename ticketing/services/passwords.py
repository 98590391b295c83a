"""What a staff password must be, and one-time passwords.

A password has at least `MIN_LENGTH` characters and is not one people commonly pick:
not on the shipped list (data/common_passwords.txt) nor such a word with digits or
signs added, not one character repeated, not a short pattern repeated, not a run of
the alphabet, of digits or of a keyboard row, and not the person's username or phone.
A one-time password (new account, reset) passes by construction and must be changed
at the next sign-in.
"""
from __future__ import annotations

import functools
import re
import secrets
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l

MIN_LENGTH = 10
MAX_LENGTH = 200  # hashing a megabyte on every sign-in attempt would be a cheap attack
ONE_TIME_LENGTH = 12
# No 0/o, 1/l/i: a one-time password is read off a screen or paper and typed on a phone.
ONE_TIME_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
COMMON_LIST = Path(__file__).parent / "data" / "common_passwords.txt"
KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz",
                 "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
TRAILING_DIGITS_AND_SIGNS = re.compile(r"[\d\W_]+$")


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower case."""
    lines = COMMON_LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def is_run(text: str) -> bool:
    """True for a stretch of the alphabet, the digits or a keyboard row, either way round."""
    return any(text in row or text in row[::-1] for row in KEYBOARD_ROWS)


def is_repeated_pattern(text: str) -> bool:
    """True when the text is one to four characters over and over ("aaaa…", "1212…", "abcabc…")."""
    return any(text == (text[:n] * (len(text) // n + 1))[:len(text)] for n in range(1, 5))


def problem(password: str, username: str = "", phone: str | None = None) -> Any | None:
    """Why `password` is refused (a message), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return _l("Use at least %(n)d characters.", n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _l("Use at most %(n)d characters.", n=MAX_LENGTH)
    lowered = password.lower()
    stem = TRAILING_DIGITS_AND_SIGNS.sub("", lowered)
    if lowered in common_passwords() or (stem and stem in common_passwords()):
        return _l("This password is one of the most common ones; choose another.")
    if is_repeated_pattern(lowered) or is_run(lowered):
        return _l("This password is too easy to guess; choose another.")
    username = username.strip().lower()
    digits = re.sub(r"\D", "", phone or "")
    if (username and len(username) >= 3 and username in lowered) or (len(digits) >= 7 and digits in lowered):
        return _l("Do not use your username or phone number in your password.")
    return None


def one_time_password() -> str:
    """A fresh random password to hand over once; it passes `problem` by construction."""
    while True:
        candidate = "".join(secrets.choice(ONE_TIME_ALPHABET) for _ in range(ONE_TIME_LENGTH))
        if problem(candidate) is None:  # a random 12 is never a run or repeat in practice
            return candidate
