"""Configuration: one class read from the environment once, strictly parsed.

`Config.from_env()` is called by `create_app()` when no config is passed; tests build
a `TestingConfig` and pass it in, so nothing here is read at import time.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, overload

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_INSTANCE = BASE_DIR / "instance"


class ConfigError(RuntimeError):
    """A setting in the environment is missing or malformed."""


@overload
def env_str(env: Mapping[str, str], name: str) -> str | None: ...


@overload
def env_str(env: Mapping[str, str], name: str, default: str) -> str: ...


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """Return a non-empty string setting, or the default (a str when the default is one)."""
    value = env.get(name, "").strip()
    return value or default


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Parse a yes/no setting; anything but the known spellings is an error."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """Parse an integer setting with a lower bound."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def env_percent(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole percentage, 0 to 100."""
    value = env_int(env, name, default)
    if value > 100:
        raise ConfigError(f"{name} must be at most 100")
    return value


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """One of a fixed set of words."""
    value = (env.get(name, "").strip() or default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


# Settings read only by the senders; passed through to Flask config as they are.
PASSTHROUGH = (
    "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS",
    "SMS_SMTP_TO", "EMAIL_SMTP_TO", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TEMPLATE_ID",
    # The official account's callback (/channels/wechat, off while the token is unset).
    "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY",
    # The SMS providers (services/sms.py, docs/sms.md): credentials, and where to reach them.
    "ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SMS_ENDPOINT", "ALIYUN_SMS_REGION",
    "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_ENDPOINT",
    "TENCENT_SMS_REGION",
    # WeChat web authorisation (channels/wechat_oauth.py): WeChat's endpoints, overridden in tests.
    "WECHAT_OAUTH_AUTHORIZE_URL", "WECHAT_OAUTH_TOKEN_URL",
)

SMS_SENDERS = ("record", "smtp", "aliyun", "tencent")
# What each provider needs besides SMS_SIGN_NAME; a missing one stops the process at start.
SMS_CREDENTIALS = {
    "aliyun": ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"),
    "tencent": ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID"),
}
SMS_TEMPLATE_PREFIX = "SMS_TEMPLATE_"
SMS_TEMPLATE_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SMS_TEMPLATE_PARAM = re.compile(r"^(?:([A-Za-z][A-Za-z0-9_]{0,31})=)?([a-z][a-z0-9_]{0,31})$")


def parse_sms_templates(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The SMS template of each message kind, one variable per kind:
    `SMS_TEMPLATE_RECEIVED=SMS_154950909:number,category,link` — the provider's template
    code, then the message's values it takes, in order (Tencent fills its {1}, {2} … in
    that order); `name=value` names the template's variable (Aliyun's ${name}) when it
    differs from the value's name. Gives {"received": {"code": …, "params": [[var, value], …]}}.
    """
    templates: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if not name.startswith(SMS_TEMPLATE_PREFIX) or not raw.strip():
            continue
        kind = name[len(SMS_TEMPLATE_PREFIX):].lower()
        code, _, params = raw.strip().partition(":")
        if not re.match(r"^[a-z][a-z0-9_]{0,31}$", kind) or not SMS_TEMPLATE_CODE.match(code.strip()):
            raise ConfigError(f"{name} must be <template code>:<value>,<value>… "
                              "(e.g. SMS_154950909:number,category,link)")
        pairs = []
        for item in filter(None, (part.strip() for part in params.split(","))):
            found = SMS_TEMPLATE_PARAM.match(item)
            if found is None:
                raise ConfigError(f"{name}: {item!r} is not a value name (number, link …) or variable=value")
            pairs.append([found.group(1) or found.group(2), found.group(2)])
        templates[kind] = {"code": code.strip(), "params": pairs}
    return templates


def check_sms_sender(sender: str, env: Mapping[str, str]) -> None:
    """A provider sender needs its signature name (签名) and its credentials."""
    if sender not in SMS_CREDENTIALS:
        return
    missing = [name for name in ("SMS_SIGN_NAME", *SMS_CREDENTIALS[sender]) if not env_str(env, name)]
    if missing:
        raise ConfigError(f"SMS_SENDER={sender} needs {', '.join(missing)}")


UPSTREAM_CENTRE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MIN_UPSTREAM_SECRET = 16


def parse_upstream_centers(raw: str, name: str = "UPSTREAM_CENTERS") -> dict[str, dict[str, str]]:
    """The county centres that may send orders: `{"<id>": {"secret": …, "callback_url": …}}`.

    Strict: anything but that shape is an error. Messages never contain a secret.
    """
    raw = raw.strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name} must be a JSON object of centres")
    centres: dict[str, dict[str, str]] = {}
    for centre, entry in data.items():
        if not UPSTREAM_CENTRE_ID.match(centre):
            raise ConfigError(f"{name}: centre ids are 1-32 letters, digits, '.', '_' or '-', not {centre!r}")
        if not isinstance(entry, dict) or set(entry) != {"secret", "callback_url"}:
            raise ConfigError(f"{name}[{centre!r}] must have exactly the keys secret and callback_url")
        secret, url = entry["secret"], entry["callback_url"]
        if not isinstance(secret, str) or len(secret) < MIN_UPSTREAM_SECRET:
            raise ConfigError(f"{name}[{centre!r}].secret must be a string of at least {MIN_UPSTREAM_SECRET} characters")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"{name}[{centre!r}].callback_url must be an http(s) URL")
        centres[centre] = {"secret": secret, "callback_url": url}
    return centres


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres:// URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def development_secret(instance: Path) -> str:
    """Generate a secret key once and keep it in the instance folder."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


# Limits on the anonymous doors, as attempts per seconds (services/ratelimit.py).
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "web_ip": (120, 3600),  # resident web form, per client address (mobile networks share addresses)
    "web_phone": (6, 3600),  # resident web form, per phone number
    "open311_key": (600, 60),  # Open311 POST requests, per client app key
    "wechat_sender": (10, 600),  # WeChat messages that file tickets, per follower
}
RATE_LIMIT_ITEM = re.compile(r"^([a-z0-9_]+)=(\d+)/(\d+)$")


def parse_rate_limits(raw: str, name: str = "RATE_LIMITS") -> dict[str, tuple[int, int]]:
    """`web_ip=30/3600,web_phone=6/3600`: overrides of the defaults; 0/N turns a limit off."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for item in filter(None, (part.strip() for part in raw.split(","))):
        found = RATE_LIMIT_ITEM.match(item)
        if found is None or found.group(1) not in DEFAULT_RATE_LIMITS or int(found.group(3)) < 1:
            raise ConfigError(
                f"{name}: {item!r} is not one of {', '.join(DEFAULT_RATE_LIMITS)}=<count>/<seconds>"
            )
        limits[found.group(1)] = (int(found.group(2)), int(found.group(3)))
    return limits


@dataclass(frozen=True)
class Config:
    """Settings of one process; field names become Flask config keys in upper case."""

    env: str = "development"
    secret_key: str = ""
    database_url: str = ""
    redis_url: str | None = None
    instance_path: Path = DEFAULT_INSTANCE
    upload_folder: Path = DEFAULT_INSTANCE / "uploads"
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    max_photo_bytes: int = 20 * 1024 * 1024
    max_photos: int = 3
    # Photos decoded at once per process (gunicorn threads share its memory); see services/photos.py.
    photo_decodes_at_once: int = 2
    rate_limits: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    session_cookie_secure: bool = False
    # How long "Remember me" keeps a staff member signed in (the remember-me cookie).
    remember_days: int = 30
    # Failed guesses allowed within 15 minutes (services/throttle.py explains them).
    login_failures_per_address: int = 30  # sign-ins from one client address, any usernames
    login_failures_per_user_address: int = 10  # sign-ins as one username from one address
    login_delay_after: int = 5  # failures of one username before its growing delay begins
    track_failures_per_address: int = 30  # resident lookups from one client address
    track_failures_per_number: int = 10  # resident lookups of one ticket number
    # Reverse proxies in front of the app (nginx: 1); their X-Forwarded-* headers are trusted.
    proxy_hops: int = 0
    # Days a closed ticket keeps its requester's personal data (services/retention.py); at
    # least 30, so that a typo cannot erase last month's tickets.
    retention_days: int = 3 * 365
    # The share of satisfied ratings checked by a 回访 call, in percent (services/callbacks.py).
    callback_sample_percent: int = 10
    # The fewest tickets a recurring problem (高频诉求) must have to be kept (services/hotspots.py).
    hotspot_min_count: int = 3
    # An area export of more ledger lines than this is made in the background and the
    # reader told in the inbox (services/area_export_jobs.py); 0: always in the background.
    area_export_inline_lines: int = 20_000
    # Where residents reach the site; links in SMS and WeChat messages start with it.
    public_url: str = "http://127.0.0.1:5000"
    # How residents' messages go out: "record" (kept for admins to read), "smtp", "wechat";
    # SMS also "aliyun" or "tencent" (services/sms.py, docs/sms.md).
    sms_sender: str = "record"
    # The providers' 签名 and the template of each message kind (`parse_sms_templates`).
    sms_sign_name: str = ""
    sms_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Template values longer than this are cut (links never are): providers refuse long ones.
    sms_param_max: int = 35
    wechat_sender: str = "record"
    email_sender: str = "record"
    # County centres allowed to send orders (派单), with their shared secrets and
    # report-back URLs; see docs/upstream-api.md. Kept out of repr: secrets are never logged.
    upstream_centers: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    # A pooled database connection idle longer than this is pinged before a request
    # uses it (ticketing/dbpool.py); 0: pinged on every checkout.
    db_idle_ping_seconds: int = 5
    testing: bool = False
    wtf_csrf_enabled: bool = True
    sqlalchemy_echo: bool = False
    # The senders' settings (PASSTHROUGH); kept out of repr, for they hold secrets.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build the configuration from environment variables."""
        env = os.environ if env is None else env
        mode = env_str(env, "MINHU_ENV", "development")
        if mode not in {"development", "production"}:
            raise ConfigError("MINHU_ENV must be development or production")
        instance = Path(env_str(env, "MINHU_INSTANCE", str(DEFAULT_INSTANCE)))
        secret = env_str(env, "SECRET_KEY")
        if secret is None:
            if mode == "production":
                raise ConfigError("SECRET_KEY must be set in production")
            secret = development_secret(instance)
        database = env_str(env, "DATABASE_URL", f"sqlite:///{instance / 'minhu.db'}")
        check_sms_sender(env_choice(env, "SMS_SENDER", SMS_SENDERS, "record"), env)
        return cls(
            env=mode,
            secret_key=secret,
            database_url=normalise_database_url(database),
            redis_url=env_str(env, "REDIS_URL"),
            instance_path=instance,
            upload_folder=Path(env_str(env, "UPLOAD_FOLDER", str(instance / "uploads"))),
            timezone=env_str(env, "MINHU_TIMEZONE", "Asia/Shanghai"),
            max_photo_bytes=env_int(env, "MAX_PHOTO_BYTES", 20 * 1024 * 1024, minimum=1024),
            photo_decodes_at_once=env_int(env, "PHOTO_DECODES_AT_ONCE", 2, minimum=1),
            session_cookie_secure=env_bool(env, "SESSION_COOKIE_SECURE", mode == "production"),
            remember_days=env_int(env, "REMEMBER_DAYS", 30, minimum=1),
            login_failures_per_address=env_int(env, "LOGIN_FAILURES_PER_ADDRESS", 30, minimum=1),
            login_failures_per_user_address=env_int(env, "LOGIN_FAILURES_PER_USER_ADDRESS", 10, minimum=1),
            login_delay_after=env_int(env, "LOGIN_DELAY_AFTER", 5, minimum=1),
            track_failures_per_address=env_int(env, "TRACK_FAILURES_PER_ADDRESS", 30, minimum=1),
            track_failures_per_number=env_int(env, "TRACK_FAILURES_PER_NUMBER", 10, minimum=1),
            proxy_hops=env_int(env, "PROXY_HOPS", 0),
            retention_days=env_int(env, "RETENTION_DAYS", 3 * 365, minimum=30),
            callback_sample_percent=env_percent(env, "CALLBACK_SAMPLE_PERCENT", 10),
            hotspot_min_count=env_int(env, "HOTSPOT_MIN_COUNT", 3, minimum=2),
            area_export_inline_lines=env_int(env, "AREA_EXPORT_INLINE_LINES", 20_000, minimum=0),
            public_url=env_str(env, "PUBLIC_URL", "http://127.0.0.1:5000"),
            sms_sender=env_choice(env, "SMS_SENDER", SMS_SENDERS, "record"),
            sms_sign_name=env_str(env, "SMS_SIGN_NAME", "") or "",
            sms_templates=parse_sms_templates(env),
            sms_param_max=env_int(env, "SMS_PARAM_MAX", 35, minimum=6),
            wechat_sender=env_choice(env, "WECHAT_SENDER", ("record", "wechat"), "record"),
            email_sender=env_choice(env, "EMAIL_SENDER", ("record", "smtp"), "record"),
            upstream_centers=parse_upstream_centers(env.get("UPSTREAM_CENTERS", "")),
            rate_limits=parse_rate_limits(env.get("RATE_LIMITS", "")),
            db_idle_ping_seconds=env_int(env, "DB_IDLE_PING_SECONDS", 5),
            extra={name: env[name] for name in PASSTHROUGH if env.get(name)},
        )

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with some settings changed (used by tests and scripts)."""
        return replace(self, **changes)

    def flask_mapping(self) -> dict[str, Any]:
        """The settings as Flask config keys."""
        mapping = {f.name.upper(): getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        mapping.update(
            SQLALCHEMY_DATABASE_URI=self.database_url,
            SQLALCHEMY_ENGINE_OPTIONS=engine_options(self.database_url),
            # Room for the photos and the form fields around them; each photo is
            # checked against MAX_PHOTO_BYTES on its own.
            MAX_CONTENT_LENGTH=self.max_photos * self.max_photo_bytes + 1024 * 1024,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            REMEMBER_COOKIE_SECURE=self.session_cookie_secure,
            REMEMBER_COOKIE_HTTPONLY=True,
            # Lax: not sent on cross-site POSTs or from another site's frames and images.
            REMEMBER_COOKIE_SAMESITE="Lax",
            REMEMBER_COOKIE_DURATION=timedelta(days=self.remember_days),
            BABEL_DEFAULT_LOCALE=self.default_locale,
            BABEL_DEFAULT_TIMEZONE=self.timezone,
            BABEL_TRANSLATION_DIRECTORIES=str(BASE_DIR / "ticketing" / "translations"),
            WTF_CSRF_TIME_LIMIT=None,
        )
        mapping.update(self.extra)
        return mapping


def engine_options(url: str) -> dict[str, Any]:
    """Engine settings per backend: SQLite waits for its lock instead of failing. A
    server's connections are not pinged on every checkout (`pool_pre_ping`) but only
    after `db_idle_ping_seconds` idle (ticketing/dbpool.py, set up by `create_app`)."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {}


def testing_config(database_url: str, instance: Path, **changes: Any) -> Config:
    """A configuration for tests: fixed secret, the given database, CSRF on."""
    base = Config(
        env="development",
        secret_key="test-secret-key-not-for-production",
        database_url=normalise_database_url(database_url),
        instance_path=instance,
        upload_folder=instance / "uploads",
        testing=True,
    )
    return base.with_overrides(**changes)
