"""SMS through a provider: Aliyun SMS (阿里云短信服务) or Tencent Cloud SMS (腾讯云短信),
the senders of `SMS_SENDER=aliyun` and `SMS_SENDER=tencent` (services/senders.py).

Mainland providers send only templates they have approved, under an approved
signature name (签名, `SMS_SIGN_NAME`), filled with parameters: each message kind
has its template and the values it takes, in order (`SMS_TEMPLATE_<KIND>`, parsed by
config.py `parse_sms_templates`); the values are those the message was written with
(`Notification.params`, services/notify.py). docs/sms.md lists the kinds and values.

Outcomes: accepted by the provider → sent. A refusal that can never succeed as it is
(the number, the template, the signature, no balance, no permission) raises
`PermanentSendError`, and the message is marked failed at once; anything else —
throttling, a busy system, a timeout, an unknown answer — raises `SendError`, and the
message is tried again later with the outbox's backoff, up to its attempts.

Secrets and phone numbers never reach a log or an error text: the requests are POSTs
(nothing in a URL), a network error is reported by its type only, and digits in a
provider's message are masked.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from ticketing.models import Notification
from ticketing.services.privacy import mask_phone
from ticketing.services.senders import PermanentSendError, SendError

log = logging.getLogger(__name__)

TIMEOUT = (5, 10)  # seconds to connect, to read
MOBILE = re.compile(r"^1[3-9]\d{9}$")
DIGITS = re.compile(r"\+?\d[\d -]{5,}\d")
UNLIMITED = ("link",)  # value names never cut: a cut link leads nowhere

ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
TENCENT_ENDPOINT = "https://sms.tencentcloudapi.com/"

# Aliyun SendSms "Code"s (短信服务 API 错误码) that no retry can fix.
ALIYUN_PERMANENT = frozenset({
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT", "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
    "isv.SMS_TEMPLATE_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.INVALID_JSON_PARAM", "isv.INVALID_PARAMETERS", "isv.PARAM_LENGTH_LIMIT", "isv.PARAM_NOT_SUPPORT_URL",
    "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGN_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.SMS_CONTENT_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL",
    "isv.PRODUCT_UN_SUBSCRIPT", "isv.PRODUCT_UNSUBSCRIBE", "isv.DENY_IP_RANGE", "isp.RAM_PERMISSION_DENY",
})
# Tencent Cloud SendSms error codes (短信 API 3.0 错误码) that no retry can fix.
TENCENT_PERMANENT = frozenset({
    "InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.PhoneNumberParseFail", "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
    "LimitExceeded.PhoneNumberCountLimit",
    "FailedOperation.TemplateIncorrectOrUnapproved", "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
    "FailedOperation.TemplateUnapprovedOrNotExist", "InvalidParameterValue.TemplateParameterFormatError",
    "InvalidParameterValue.TemplateParameterLengthLimit", "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
    "InvalidParameterValue.ContentLengthLimit", "FailedOperation.ContainSensitiveWord",
    "FailedOperation.SignatureIncorrectOrUnapproved", "FailedOperation.MissingSignature",
    "FailedOperation.InsufficientBalanceInSmsPackage", "UnauthorizedOperation.SerivceSuspendDueToArrears",
    "InvalidParameterValue.SdkAppIdNotExist", "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
    "UnauthorizedOperation.RequestPermissionDeny", "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny",
    "UnsupportedOperation.UnsupportedRegion",
})


def scrub(text: Any, limit: int = 200) -> str:
    """A provider's message without phone numbers (or any long run of digits)."""
    return DIGITS.sub(lambda found: mask_phone(re.sub(r"\D", "", found.group())), str(text or ""))[:limit]


def mobile_of(address: str) -> str:
    """The 11 digits of a mainland mobile number; raises PermanentSendError for anything else."""
    digits = re.sub(r"[\s-]", "", address or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix):]
    if not MOBILE.match(digits):
        raise PermanentSendError("not a mainland mobile number")
    return digits


def template_values(notification: Notification, templates: Mapping[str, Any],
                    limit: int) -> tuple[str, list[tuple[str, str]]]:
    """The template code of the message's kind and its (variable, value) pairs in order;
    raises PermanentSendError when the kind has no template or lacks a value it names."""
    template = templates.get(notification.kind)
    if not template:
        raise PermanentSendError(f"no SMS template for {notification.kind!r} messages "
                                 f"(SMS_TEMPLATE_{notification.kind.upper()})")
    values = notification.params or {}
    pairs = []
    for variable, name in template["params"]:
        if name not in values:
            raise PermanentSendError(f"template {template['code']} takes {name!r}, "
                                     f"which {notification.kind!r} messages do not have")
        value = " ".join(str(values[name]).split()) or "-"  # providers refuse empty parameters
        if name not in UNLIMITED and len(value) > limit:
            value = value[:limit - 1] + "…"
        pairs.append((variable, value))
    return str(template["code"]), pairs


def post(url: str, provider: str, **kwargs: Any) -> dict[str, Any]:
    """POST and read the JSON answer; a network error or an unreadable answer is a SendError
    (named by its type only: the exception's text could carry the request)."""
    try:
        response = requests.post(url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise SendError(f"{provider}: {type(exc).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise SendError(f"{provider}: HTTP {response.status_code} without a JSON answer")
    return answer


def refused(provider: str, code: str, message: Any, permanent: frozenset[str]) -> SendError:
    """The error for a provider's refusal: permanent for the codes in `permanent`."""
    text = f"{provider} {scrub(code, 80)}: {scrub(message)}"
    return PermanentSendError(text) if code in permanent else SendError(text)


# --- Aliyun ----------------------------------------------------------------------------
# SendSms of dysmsapi 2017-05-25, an RPC-style API, signed as "签名机制" for RPC APIs
# says (https://help.aliyun.com/document_detail/28839.html; SMS:
# https://help.aliyun.com/document_detail/101343.html):
#   1. every parameter but Signature, sorted by name; names and values percent-encoded
#      (RFC 3986: A-Z a-z 0-9 - _ . ~ kept, space as %20, UTF-8), joined as k=v with &;
#   2. StringToSign = HTTPMethod & percentEncode("/") & percentEncode(that query string);
#   3. Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)).


def percent_encode(value: str) -> str:
    """Aliyun's percentEncode: RFC 3986, only unreserved characters left as they are."""
    return quote(value, safe="~")


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """The string Aliyun's RPC signature signs (step 2 above)."""
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
                     if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(query)}"


def aliyun_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(f"{secret}&".encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsSender:
    """SMS through Aliyun's SendSms (dysmsapi)."""

    name = "aliyun"
    external = True

    def __init__(self, config: Mapping[str, Any], clock: Callable[[], datetime] | None = None) -> None:
        self.key_id = config.get("ALIYUN_ACCESS_KEY_ID") or ""
        self.secret = config.get("ALIYUN_ACCESS_KEY_SECRET") or ""
        self.endpoint = config.get("ALIYUN_SMS_ENDPOINT") or ALIYUN_ENDPOINT
        self.region = config.get("ALIYUN_SMS_REGION") or "cn-hangzhou"
        self.sign_name = config.get("SMS_SIGN_NAME") or ""
        self.templates = config.get("SMS_TEMPLATES") or {}
        self.limit = int(config.get("SMS_PARAM_MAX") or 35)
        self.clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:  # never show the secret
        return f"AliyunSmsSender(endpoint={self.endpoint!r})"

    def request(self, notification: Notification) -> dict[str, str]:
        """The signed form of one SendSms call."""
        phone = mobile_of(notification.address)
        code, pairs = template_values(notification, self.templates, self.limit)
        params = {
            "AccessKeyId": self.key_id, "Action": "SendSms", "Format": "JSON", "OutId": str(notification.id),
            "PhoneNumbers": phone, "RegionId": self.region, "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "TemplateCode": code, "TemplateParam": json.dumps(dict(pairs), ensure_ascii=False),
            "Timestamp": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature("POST", params, self.secret)
        return params

    def send(self, notification: Notification) -> None:
        """Send one message; raises SendError (retry) or PermanentSendError."""
        answer = post(self.endpoint, "aliyun", data=self.request(notification))
        code = str(answer.get("Code") or "")
        if code != "OK":
            raise refused("aliyun", code or "no Code", answer.get("Message"), ALIYUN_PERMANENT)
        log.info("notification %s sent by aliyun (request %s)", notification.id, scrub(answer.get("RequestId"), 64))


# --- Tencent Cloud ---------------------------------------------------------------------
# SendSms of API 3.0, version 2021-01-11 (https://cloud.tencent.com/document/api/382/55981),
# signed with TC3-HMAC-SHA256 as "签名方法 v3" says (https://cloud.tencent.com/document/api/382/52072):
#   CanonicalRequest = POST \n / \n (empty query) \n CanonicalHeaders \n SignedHeaders \n
#                      hex(SHA256(payload)); headers as lower-case "key:value\n", sorted;
#   StringToSign = "TC3-HMAC-SHA256" \n timestamp \n date/sms/tc3_request \n hex(SHA256(CanonicalRequest));
#   SecretDate = HMAC-SHA256("TC3" + SecretKey, date); SecretService = HMAC(SecretDate, "sms");
#   SecretSigning = HMAC(SecretService, "tc3_request"); Signature = hex(HMAC(SecretSigning, StringToSign));
#   Authorization: TC3-HMAC-SHA256 Credential=SecretId/date/sms/tc3_request, SignedHeaders=…, Signature=….
# Error codes: https://cloud.tencent.com/document/api/382/59177.

TC3 = "TC3-HMAC-SHA256"
TENCENT_SERVICE = "sms"
TENCENT_CONTENT_TYPE = "application/json; charset=utf-8"
TENCENT_SIGNED = ("content-type", "host", "x-tc-action")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tc3_canonical_request(method: str, headers: Mapping[str, str], signed: tuple[str, ...], payload: bytes) -> str:
    """The canonical request of a TC3 signature over the `signed` headers (lower-case names)."""
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    canonical = "".join(f"{name}:{lowered.get(name, '')}\n" for name in sorted(signed))
    return "\n".join([method, "/", "", canonical, ";".join(sorted(signed)), sha256_hex(payload)])


def tc3_signature(secret_key: str, timestamp: int, service: str, canonical_request: str) -> str:
    """The hex signature of a canonical request made at `timestamp` (Unix seconds)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([TC3, str(timestamp), scope, sha256_hex(canonical_request.encode())])

    def sign(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    signing = sign(sign(sign(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()


class TencentSmsSender:
    """SMS through Tencent Cloud's SendSms (API 3.0, 2021-01-11)."""

    name = "tencent"
    external = True

    def __init__(self, config: Mapping[str, Any], clock: Callable[[], datetime] | None = None) -> None:
        self.secret_id = config.get("TENCENTCLOUD_SECRET_ID") or ""
        self.secret_key = config.get("TENCENTCLOUD_SECRET_KEY") or ""
        self.app_id = config.get("TENCENT_SMS_SDK_APP_ID") or ""
        self.endpoint = config.get("TENCENT_SMS_ENDPOINT") or TENCENT_ENDPOINT
        self.region = config.get("TENCENT_SMS_REGION") or "ap-guangzhou"
        self.sign_name = config.get("SMS_SIGN_NAME") or ""
        self.templates = config.get("SMS_TEMPLATES") or {}
        self.limit = int(config.get("SMS_PARAM_MAX") or 35)
        self.clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:  # never show the secret
        return f"TencentSmsSender(endpoint={self.endpoint!r})"

    def request(self, notification: Notification) -> tuple[dict[str, str], bytes]:
        """The signed headers and the body of one SendSms call."""
        phone = mobile_of(notification.address)
        code, pairs = template_values(notification, self.templates, self.limit)
        payload = json.dumps({
            "PhoneNumberSet": [f"+86{phone}"], "SmsSdkAppId": self.app_id, "SignName": self.sign_name,
            "TemplateId": code, "TemplateParamSet": [value for _, value in pairs],
            "SessionContext": str(notification.id),
        }, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self.clock().timestamp())
        headers = {"Content-Type": TENCENT_CONTENT_TYPE, "Host": urlsplit(self.endpoint).netloc,
                   "X-TC-Action": "SendSms", "X-TC-Timestamp": str(timestamp), "X-TC-Version": "2021-01-11",
                   "X-TC-Region": self.region}
        signature = tc3_signature(self.secret_key, timestamp, TENCENT_SERVICE,
                                  tc3_canonical_request("POST", headers, TENCENT_SIGNED, payload))
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        headers["Authorization"] = (f"{TC3} Credential={self.secret_id}/{date}/{TENCENT_SERVICE}/tc3_request, "
                                    f"SignedHeaders={';'.join(TENCENT_SIGNED)}, Signature={signature}")
        return headers, payload

    def send(self, notification: Notification) -> None:
        """Send one message; raises SendError (retry) or PermanentSendError."""
        headers, payload = self.request(notification)
        answer = post(self.endpoint, "tencent", data=payload, headers=headers).get("Response")
        if not isinstance(answer, dict):
            raise SendError("tencent: an answer without Response")
        error = answer.get("Error")
        if isinstance(error, dict):
            raise refused("tencent", str(error.get("Code") or "no Code"), error.get("Message"), TENCENT_PERMANENT)
        statuses = answer.get("SendStatusSet") or [{}]
        status = statuses[0] if isinstance(statuses[0], dict) else {}
        code = str(status.get("Code") or "")
        if code != "Ok":
            raise refused("tencent", code or "no Code", status.get("Message"), TENCENT_PERMANENT)
        log.info("notification %s sent by tencent (request %s)", notification.id, scrub(answer.get("RequestId"), 64))
