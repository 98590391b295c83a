"""Local stand-ins for the SMS providers' SendSms, for tests of services/sms.py.

Each is an `http.server` on a free port of 127.0.0.1, in a thread, that checks a
request the way its provider does — written here from the providers' documentation
on its own, not with the code under test: the Aliyun fake recomputes the RPC
signature (HMAC-SHA1 of the sorted, percent-encoded parameters, encoded the way the
documentation's Java recipe does: form-encode, then "+" → %20, "*" → %2A, %7E → "~"),
the Tencent fake the TC3-HMAC-SHA256 one (over the headers the request names, from
the body as received). A request signed with another secret is refused with the
provider's own error code; otherwise the fake answers success, or the error code a
test chose. Every request is kept, decoded, for the test to read.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, quote_plus

KEY_ID = "LTAI-test-key-id"
SECRET = "test-secret-0123456789abcdef"
APP_ID = "1400000001"
SKEW = 15 * 60  # seconds a request's time may be off the fake's clock


class FakeProvider:
    """A fake provider on a free port; `fail_with` chooses the next answers' error code."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_with: str | None = None
        self.fail_per_number = False  # Tencent: report the code in SendStatusSet, not as Error
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = fake.answer(self.command, {k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def answer(self, method: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


# --- Aliyun ------------------------------------------------------------------------------


def aliyun_encode(value: str) -> str:
    """percentEncode as the documentation builds it from a form encoder."""
    return quote_plus(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def aliyun_expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    canonical = "&".join(f"{aliyun_encode(k)}={aliyun_encode(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = method + "&" + aliyun_encode("/") + "&" + aliyun_encode(canonical)
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


class FakeAliyun(FakeProvider):
    """dysmsapi's SendSms (RPC, 2017-05-25)."""

    def answer(self, method: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        self.received.append(params)
        request_id = f"FAKE-{len(self.received)}"
        if params.get("AccessKeyId") != KEY_ID:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.",
                         "RequestId": request_id}
        expected = aliyun_expected_signature(method, params, SECRET)
        if params.get("Signature") != expected:
            canonical = "&".join(f"{aliyun_encode(k)}={aliyun_encode(params[k])}" for k in sorted(params)
                                 if k != "Signature")
            # As the real service does, it echoes what it signed: the phone number with it.
            return 400, {"Code": "SignatureDoesNotMatch", "RequestId": request_id,
                         "Message": f"Specified signature is not matched with our calculation. server string to "
                                    f"sign is:{method}&%2F&{aliyun_encode(canonical)}"}
        missing = [name for name in ("Action", "Version", "SignatureMethod", "SignatureVersion", "SignatureNonce",
                                     "Timestamp", "Format", "PhoneNumbers", "SignName", "TemplateCode")
                   if not params.get(name)]
        if missing or params["Action"] != "SendSms" or params["Version"] != "2017-05-25" \
                or params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return 400, {"Code": "MissingParameter", "Message": f"bad or missing {missing}", "RequestId": request_id}
        sent = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs(time.time() - sent.timestamp()) > SKEW:
            return 400, {"Code": "InvalidTimeStamp.Expired", "Message": "expired", "RequestId": request_id}
        json.loads(params.get("TemplateParam") or "{}")
        if self.fail_with:
            status = 400 if self.fail_with.startswith("Throttling") else 200
            return status, {"Code": self.fail_with, "Message": f"refused for {params['PhoneNumbers']}",
                            "RequestId": request_id}
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"{len(self.received)}^0", "RequestId": request_id}


# --- Tencent Cloud --------------------------------------------------------------------------

AUTHORIZATION = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>\w+)"
                           r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$")


def tc3_expected_signature(headers: dict[str, str], signed: list[str], body: bytes, secret: str,
                           date: str, service: str, timestamp: str) -> str:
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed)
    canonical = "POST\n/\n\n" + canonical_headers + "\n" + ";".join(signed) + "\n" + hashlib.sha256(body).hexdigest()
    to_sign = "TC3-HMAC-SHA256\n" + timestamp + "\n" + f"{date}/{service}/tc3_request\n" + \
        hashlib.sha256(canonical.encode()).hexdigest()
    key = hmac.new(("TC3" + secret).encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencent(FakeProvider):
    """SendSms of Tencent Cloud's API 3.0 (2021-01-11)."""

    def error(self, code: str, message: str) -> tuple[int, dict[str, Any]]:
        return 200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": f"fake-{len(self.received)}"}}

    def answer(self, method: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        payload = json.loads(body)
        self.received.append({"headers": headers, "payload": payload})
        found = AUTHORIZATION.match(headers.get("authorization", ""))
        if found is None:
            return self.error("AuthFailure.InvalidAuthorization", "Authorization is malformed")
        if found["id"] != KEY_ID:
            return self.error("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        timestamp = headers.get("x-tc-timestamp", "")
        signed = found["signed"].split(";")
        if found["service"] != "sms" or signed != sorted(signed) or not {"content-type", "host"} <= set(signed) \
                or datetime.fromtimestamp(int(timestamp or 0), UTC).strftime("%Y-%m-%d") != found["date"]:
            return self.error("AuthFailure.InvalidAuthorization", "Credential scope or signed headers are wrong")
        if abs(time.time() - int(timestamp)) > 300:
            return self.error("AuthFailure.SignatureExpire", "Signature expired")
        expected = tc3_expected_signature(headers, signed, body, SECRET, found["date"], "sms", timestamp)
        if found["signature"] != expected:
            return self.error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        if headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11" \
                or not headers.get("x-tc-region") or payload.get("SmsSdkAppId") != APP_ID:
            return self.error("InvalidParameter", "action, version, region or SmsSdkAppId")
        if self.fail_with and not self.fail_per_number:
            return self.error(self.fail_with, "refused")
        number = payload["PhoneNumberSet"][0]
        code, message = (self.fail_with, f"refused for {number}") if self.fail_with else ("Ok", "send success")
        return 200, {"Response": {"SendStatusSet": [{
            "SerialNo": f"fake:{len(self.received)}", "PhoneNumber": number, "Fee": 1,
            "SessionContext": payload.get("SessionContext", ""), "Code": code, "Message": message, "IsoCode": "CN",
        }], "RequestId": f"fake-{len(self.received)}"}}
