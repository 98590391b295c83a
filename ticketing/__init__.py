"""Minhu (民呼): grid-governance ticketing. `create_app()` builds the Flask app."""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from flask import Flask, has_request_context, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from config import BASE_DIR, Config
from ticketing import logscrub
from ticketing.dbpool import ping_when_idle
from ticketing.extensions import babel, csrf, db, login_manager, migrate
from ticketing.redirects import MalformedNext, safe_next
from ticketing.security_headers import register_security_headers

LOCALES = ("zh_CN", "en")


def create_app(config: Config | None = None) -> Flask:
    """Build the app from `config`, or from the environment when none is given."""
    config = config or Config.from_env()
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(Path(__file__).parent / "static"),
        instance_path=str(config.instance_path),
    )
    app.config.from_mapping(config.flask_mapping())
    Path(config.instance_path).mkdir(parents=True, exist_ok=True)
    Path(config.upload_folder).mkdir(parents=True, exist_ok=True)
    if config.proxy_hops:
        # Links such as the resident's tracking URL need the client's scheme and host.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's way to add WSGI middleware
            app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops,
            x_host=config.proxy_hops,
        )
    register_extensions(app)
    register_photo_decodes(config)
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_cli(app)
    register_event_listeners(app)
    register_outbox_relay(app)
    register_security_headers(app)
    logscrub.install()  # signed URLs and tokens stay out of the request logs
    return app


def register_photo_decodes(config: Config) -> None:
    """Bound the photos decoded at once: per process, like the memory it protects."""
    from ticketing.services.photos import limit_decodes

    limit_decodes(config.photo_decodes_at_once)


def register_event_listeners(app: Flask) -> None:
    """What follows from a ticket's event: each a listener of the state machine, in order."""
    from ticketing.channels import upstream
    from ticketing.services import callbacks, events, notify

    events.subscribe(app, notify.on_event)  # the resident's and the staff's messages
    events.subscribe(app, upstream.on_event)  # a county-centre order reports its progress back
    events.subscribe(app, callbacks.on_event)  # 回访 tasks: 不满意, not rated, walk-in, samples


def register_outbox_relay(app: Flask) -> None:
    """After a request that wrote outbox rows, hand them over at once.

    The relay lives with the workers; it is found by name so that the web package
    does not import the queue machinery at start-up.
    """
    from werkzeug.utils import import_string

    from ticketing.services.outbox import EMITTED

    @app.after_request
    def relay_emitted(response: Any) -> Any:
        if db.session.info.get(EMITTED):
            import_string("workers.relay.relay_after_request")()
        return response


def select_locale() -> Locale:
    """Chinese unless the visitor chose English (kept in the session)."""
    from ticketing.labels import locale_of

    if not has_request_context():
        return locale_of("zh_CN")
    chosen = session.get("lang")
    return locale_of(chosen if chosen in LOCALES else "zh_CN")


def register_extensions(app: Flask) -> None:
    """Bind the unbound extension objects to this app."""
    from ticketing import models  # noqa: F401  (registers the tables)

    db.init_app(app)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            ping_when_idle(db.engine, app.config["DB_IDLE_PING_SECONDS"])
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(session_id: str) -> Any:
        from ticketing.services.accounts import user_of_session

        return user_of_session(session_id)


def register_blueprints(app: Flask) -> None:
    """Mount the feature blueprints."""
    from ticketing.admin.views import bp as admin_bp
    from ticketing.api.open311 import bp as open311_bp
    from ticketing.api.staff import bp as staff_api_bp
    from ticketing.api.upstream import bp as upstream_api_bp
    from ticketing.auth.views import bp as auth_bp
    from ticketing.brief.views import bp as brief_bp
    from ticketing.channels.wechat_views import bp as wechat_bp
    from ticketing.console.views import bp as console_bp
    from ticketing.governance.views import bp as governance_bp
    from ticketing.inbox.views import bp as inbox_bp
    from ticketing.ledger.views import bp as ledger_bp
    from ticketing.ops.health import bp as health_bp
    from ticketing.ops.views import bp as ops_bp
    from ticketing.patrol.views import bp as patrol_bp
    from ticketing.resident.views import bp as resident_bp
    from ticketing.staff.views import bp as staff_bp
    from ticketing.workbench.views import bp as workbench_bp

    app.register_blueprint(resident_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(staff_bp, url_prefix="/tickets")
    app.register_blueprint(console_bp, url_prefix="/console")
    app.register_blueprint(workbench_bp, url_prefix="/workbench")
    app.register_blueprint(patrol_bp, url_prefix="/patrol")  # grid patrol, WeChat-group entry
    app.register_blueprint(inbox_bp, url_prefix="/inbox")  # also puts the unread count in the nav
    app.register_blueprint(ledger_bp, url_prefix="/ledger")  # daily ledgers, 三率, exports
    app.register_blueprint(brief_bp, url_prefix="/brief")  # the supervisors' morning brief
    app.register_blueprint(governance_bp, url_prefix="/governance")  # 治理任务, 每月一题
    app.register_blueprint(ops_bp, url_prefix="/admin/ops")
    app.register_blueprint(admin_bp, url_prefix="/admin")  # /admin/rules…, /admin/people…
    app.register_blueprint(health_bp)
    app.register_blueprint(upstream_api_bp, url_prefix="/api/v1/upstream")  # county centre orders
    app.register_blueprint(staff_api_bp, url_prefix="/api/v1")  # staff apps, token auth
    app.register_blueprint(open311_bp, url_prefix="/open311")  # Open311 GeoReport v2 apps
    app.register_blueprint(wechat_bp, url_prefix="/channels/wechat")  # WeChat official account


def register_errorhandlers(app: Flask) -> None:
    """Friendly error pages that never show internals."""

    def page(code: int, title: str, message: str) -> tuple[str, int]:
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        return page(400, _("The form expired"), _("Please go back, reload the page and try again."))

    @app.errorhandler(MalformedNext)
    def malformed_next(exc: MalformedNext) -> tuple[str, int]:
        return page(400, _("Broken link"), str(exc.description))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[str, int]:
        return page(413, _("Upload too large"), _("Photos may be at most 5 MB each, 3 photos in all."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        messages = {
            404: (_("Not found"), _("There is no such page, or it is not yours to see.")),
            403: (_("Not allowed"), _("You may not do that.")),
            405: (_("Not allowed"), _("That is not how this page is used.")),
        }
        title, message = messages.get(exc.code or 500, (_("Something went wrong"), _("Please try again.")))
        return page(exc.code or 500, title, message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str, int]:
        # Logged with its traceback for operators; the visitor sees no internals.
        app.logger.exception("unhandled error on %s %s", request.method, logscrub.scrub_path(request.path))
        db.session.rollback()
        return page(500, _("Something went wrong"), _("Nothing was saved. Please try again later."))


def register_template_helpers(app: Flask) -> None:
    """Filters and globals the templates use: local time, labels, masking."""
    from ticketing import labels
    from ticketing.services import phones, privacy
    from ticketing.web import beyond_nav_count, callbacks_open, inbox_unread, nav_count

    tz = ZoneInfo(app.config["TIMEZONE"])

    @app.template_filter("localtime")
    def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value else ""

    @app.template_filter("deadline")
    def deadline(value: datetime | None) -> str:
        return labels.format_deadline(value, tz)

    app.jinja_env.filters.update(
        mask_name=privacy.mask_name,
        mask_phone=privacy.mask_phone,
        mask_room=privacy.mask_room,
        mask_address=privacy.mask_address,
        mask_text=privacy.mask_text,
        phone_kind=phones.kind_of,
        status_label=lambda code: labels.label(labels.STATUS_LABELS, code),
        channel_label=lambda code: labels.label(labels.CHANNEL_LABELS, code),
        rating_label=lambda code: labels.label(labels.RATING_LABELS, code),
        role_label=lambda code: labels.label(labels.ROLE_LABELS, code),
        action_label=lambda code: labels.label(labels.ACTION_LABELS, code),
        rule_label=lambda code: labels.label(labels.RULE_LABELS, code),
        handler_kind_label=lambda code: labels.label(labels.HANDLER_KIND_LABELS, code),
        callback_reason_label=lambda code: labels.label(labels.CALLBACK_REASON_LABELS, code),
        callback_state_label=lambda code: labels.label(labels.CALLBACK_STATE_LABELS, code),
        localized=labels.localized_name,
        nav_count=nav_count,
    )
    app.jinja_env.tests["beyond_nav_count"] = beyond_nav_count

    @app.context_processor
    def inject() -> dict[str, Any]:
        locale = get_locale()
        return {"current_locale": str(locale) if locale else "zh_CN", "locales": LOCALES,
                "inbox_unread": inbox_unread, "callbacks_open": callbacks_open}

    @app.route("/lang/<code>")
    def set_language(code: str) -> Any:
        from flask import abort, redirect, url_for

        if code not in LOCALES:
            abort(404)
        # Only local paths, so the switch cannot become an open redirect.
        target = safe_next(request.args.get("next")) or url_for("resident.index")
        session["lang"] = code
        return redirect(target)


def register_cli(app: Flask) -> None:
    """Flask commands: demo data and housekeeping."""
    from ticketing.cli import register

    register(app)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
