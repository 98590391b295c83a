"""Headers every answer carries: no framing, no type sniffing, no tokens in Referer, and
no stored copies of what staff see.

- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no page of ours is meant
  to be framed (WeChat opens them as top-level pages), so none can be clickjacked.
- `X-Content-Type-Options: nosniff` on everything, uploads above all.
- `Referrer-Policy: same-origin`: a link to another site never learns the address of
  the page it was on, so a tracking link's token stays here. Same-origin requests keep
  the Referer, which Flask-WTF requires of a form posted over HTTPS.
- `Cache-Control: no-store` on every answer to a signed-in staff member or to a
  request with an `Authorization` header, unless the view chose its own caching (a
  photo, a masked export); resident tracking pages set theirs (resident/views.py).
  Static files are left to their own caching.

A view that sets one of these headers itself keeps its value.
"""
from __future__ import annotations

from flask import Flask, request
from flask_login import current_user
from werkzeug.wrappers import Response

FRAME_ANCESTORS = "frame-ancestors 'none'"


def protect(response: Response) -> Response:
    """Add the headers above to `response` where the view did not set them."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    policy = headers.get("Content-Security-Policy")
    if policy is None:
        headers["Content-Security-Policy"] = FRAME_ANCESTORS
    elif "frame-ancestors" not in policy:
        headers["Content-Security-Policy"] = f"{policy.rstrip('; ')}; {FRAME_ANCESTORS}"
    headers.setdefault("Referrer-Policy", "same-origin")
    if "Cache-Control" not in headers and request.endpoint != "static" and (
        "Authorization" in request.headers or current_user.is_authenticated
    ):
        headers["Cache-Control"] = "no-store"
    return response


def register_security_headers(app: Flask) -> None:
    """Send the headers above with every answer of `app`."""
    app.after_request(protect)
