"""Request lines in our logs without the credentials some URLs carry.

Some doors are opened by what their URL carries: WeChat's callback by a signature,
timestamp and nonce in its query string (with the follower's openid beside them), an
Open311 client by an `api_key` it may put in the query string, a resident by the
tracking token in `/t/<token>`. Access logs keep URLs for months and are read by more
people than the database: a signed WeChat URL read there could be replayed within its
5 minutes, a tracking token opens a resident's ticket. So every URL we log passes
through `scrub_target` first:

- a signed path (`SIGNED_PATHS`, the WeChat callback) is logged without its query string;
- elsewhere, the value of a query parameter named in `SECRET_PARAMS` becomes `[redacted]`;
- a token in a path (`/t/<token>`, `/report/sent/<token>`) becomes `[token]`.

gunicorn's access log does this through `ticketing.gunicorn_logger.ScrubbingLogger`
(Procfile, deploy/minhu-web.service); the development server's request log and the
HTTP client's debug log through `install()`, called by `create_app`. A reverse proxy's
own log is the operator's to configure (docs/wechat.md).
"""
from __future__ import annotations

import logging
import re

SIGNED_PATHS = ("/channels/wechat",)
SECRET_PARAMS = frozenset({
    "signature", "msg_signature", "timestamp", "nonce", "echostr", "openid",  # WeChat
    "api_key", "access_token", "token", "secret", "sign", "key", "password",
    "code", "refresh_token",  # WeChat web authorisation (channels/wechat_oauth.py)
})
REDACTED = "[redacted]"
TOKEN_IN_PATH = re.compile(r"^(/t/|/report/sent/)[^/?#]+")
# A request line as the development server and urllib3 log it: METHOD target HTTP/x
# (no word boundary before the method: the development server may wrap it in colour codes).
REQUEST_LINE = re.compile(r"(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+)(?= HTTP/)")
# Loggers that write request lines: the development server, and urllib3 at DEBUG (the
# WeChat API's access_token travels in its query string).
REQUEST_LOGGERS = ("werkzeug", "urllib3.connectionpool")


def scrub_path(path: str) -> str:
    """The path with a token in it replaced by `[token]`."""
    return TOKEN_IN_PATH.sub(r"\1[token]", path)


def scrub_query(query: str) -> str:
    """The query string with the values of credential parameters redacted."""
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and name.lower() in SECRET_PARAMS else part)
    return "&".join(parts)


def is_signed_path(path: str) -> bool:
    """Whether the path is one authenticated by a signature in its query string."""
    return any(path == signed or path.startswith(signed + "/") for signed in SIGNED_PATHS)


def scrub_target(target: str) -> str:
    """A request target (path and query) or a whole URL, fit for a log."""
    head, sep, query = target.partition("?")
    scheme, slashes, rest = head.partition("://")
    if slashes:  # a full URL (a Referer): keep scheme and host, scrub the path
        host, slash, path = rest.partition("/")
        prefix, path = f"{scheme}://{host}", slash + path
    else:
        prefix, path = "", head
    clean = prefix + scrub_path(path)
    if not sep or is_signed_path(path):
        return clean
    return f"{clean}?{scrub_query(query)}"


def scrub_message(message: str) -> str:
    """A log message with the targets of the request lines in it scrubbed."""
    return REQUEST_LINE.sub(lambda m: f"{m.group(1)} {scrub_target(m.group(2))}", message)


class ScrubRequestLines(logging.Filter):
    """Rewrites a record's message with `scrub_message` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_message(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def install() -> None:
    """Put the filter on the loggers that write request lines (once per logger)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubRequestLines) for f in logger.filters):
            logger.addFilter(ScrubRequestLines())
