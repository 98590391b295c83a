"""Our request logs keep signed URLs, credentials and tracking tokens out.

gunicorn's access log (ticketing/gunicorn_logger.py), the development server's request
log and urllib3's debug log (ticketing/logscrub.py).
"""
from __future__ import annotations

import io
import logging
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from gunicorn.config import Config as GunicornConfig
from werkzeug.serving import make_server

from ticketing.gunicorn_logger import ScrubbingLogger
from ticketing.logscrub import scrub_target

SIGNATURE = "5f1a7c0e9d3b2a4c6e8f0a1b3c5d7e9f1a2b3c4d"
WECHAT_QUERY = f"signature={SIGNATURE}&timestamp=1764813600&nonce=1234567890&openid=oABCD1234567890openid"
FULL_FORMAT = '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s %(q)s %({raw_uri}e)s %({query_string}e)s %({referer}i)s'


def access_line(raw_uri: str, referer: str = "-", log_format: str | None = None) -> str:
    """The line gunicorn's access log writes for a GET of `raw_uri`, with our logger."""
    config = GunicornConfig()
    config.set("accesslog", "-")
    if log_format is not None:
        config.set("access_log_format", log_format)
    logger = ScrubbingLogger(config)
    captured = io.StringIO()
    logger.access_log.handlers = [logging.StreamHandler(captured)]
    path, _, query = raw_uri.partition("?")
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": raw_uri, "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.9", "HTTP_REFERER": referer}
    response = SimpleNamespace(status="200 OK", headers=[("Content-Type", "text/plain")], sent=7)
    request = SimpleNamespace(headers=[("REFERER", referer)])
    logger.access(response, request, environ, timedelta(milliseconds=3))
    return captured.getvalue()


def test_gunicorn_logs_the_wechat_callback_without_its_query_string() -> None:
    line = access_line(f"/channels/wechat?{WECHAT_QUERY}")
    assert '"GET /channels/wechat HTTP/1.1" 200' in line
    assert SIGNATURE not in line and "1234567890" not in line and "openid" not in line


def test_every_url_atom_of_a_custom_gunicorn_format_is_scrubbed() -> None:
    line = access_line(f"/channels/wechat/?{WECHAT_QUERY}", referer="https://minhu.example/t/SECRETTOKEN",
                       log_format=FULL_FORMAT)
    assert SIGNATURE not in line and "SECRETTOKEN" not in line
    assert "/channels/wechat/" in line and "https://minhu.example/t/[token]" in line


def test_gunicorn_logs_a_tracking_link_without_its_token() -> None:
    line = access_line("/t/SECRETTOKEN/photos/3")
    assert '"GET /t/[token]/photos/3 HTTP/1.1"' in line
    assert "SECRETTOKEN" not in line


def test_gunicorn_keeps_ordinary_query_strings_but_not_credentials() -> None:
    line = access_line("/open311/v2/requests.json?jurisdiction_id=minhu&api_key=SECRETKEY&page=2")
    assert "/open311/v2/requests.json?jurisdiction_id=minhu&api_key=[redacted]&page=2" in line
    assert "SECRETKEY" not in line


@pytest.mark.parametrize(("target", "logged"), [
    (f"/channels/wechat?{WECHAT_QUERY}", "/channels/wechat"),
    ("/channels/wechatty?signature=x", "/channels/wechatty?signature=[redacted]"),
    ("/report/sent/TOKEN?x=1", "/report/sent/[token]?x=1"),
    ("/console/?q=3号楼&tab=open", "/console/?q=3号楼&tab=open"),
    ("/cgi-bin/media/get?ACCESS_TOKEN=abc&media_id=9", "/cgi-bin/media/get?ACCESS_TOKEN=[redacted]&media_id=9"),
    ("https://minhu.example/channels/wechat?signature=x", "https://minhu.example/channels/wechat"),
    ("-", "-"),
])
def test_scrub_target(target: str, logged: str) -> None:
    assert scrub_target(target) == logged


def test_the_development_servers_request_log_leaves_the_signature_out(
        ctx: Flask, caplog: pytest.LogCaptureFixture) -> None:
    server = make_server("127.0.0.1", 0, ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_port}/channels/wechat?{WECHAT_QUERY}"
            with pytest.raises(urllib.error.HTTPError):  # the channel is off: 404, still logged
                urllib.request.urlopen(url, timeout=5)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("GET /channels/wechat HTTP/1.1" in line for line in lines), lines
    assert not any(SIGNATURE in line for line in lines)


def test_a_colored_request_line_is_scrubbed_too(ctx: Flask, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info('%s - - "%s" %s %s', "127.0.0.1",
                                           f"\x1b[1mPOST /channels/wechat?{WECHAT_QUERY} HTTP/1.1\x1b[0m",
                                           200, "-")
    assert SIGNATURE not in caplog.text
    assert "POST /channels/wechat HTTP/1.1" in caplog.text


def test_the_wechat_apis_access_token_stays_out_of_urllib3s_debug_log(
        ctx: Flask, caplog: pytest.LogCaptureFixture) -> None:
    args: Any = ("https", "api.weixin.qq.com", 443, "GET",
                 "/cgi-bin/media/get?access_token=SECRETTOKEN&media_id=m1", "HTTP/1.1", 200, 10)
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug('%s://%s:%s "%s %s %s" %s %s', *args)
    assert "SECRETTOKEN" not in caplog.text
    assert "access_token=[redacted]&media_id=m1" in caplog.text
