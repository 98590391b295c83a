"""`/open311`: Open311 GeoReport v2 under `/open311/v2/`, and its discovery document.

Every resource answers in XML or JSON by its extension, errors too (the spec's
`<errors>` document, with 400/403/404/413/415/429). No cookies, no CSRF token: apps
authenticate a POST with their api_key. See docs/open311.md.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from flask_babel import force_locale
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from werkzeug.exceptions import HTTPException

from ticketing import web
from ticketing.channels import open311, rawform
from ticketing.channels.open311 import Open311Error
from ticketing.channels.open311_format import FORMATS, render
from ticketing.channels.open311_post import file_request
from ticketing.extensions import csrf, db
from ticketing.labels import locale_of
from ticketing.models import Street

bp = Blueprint("open311", __name__)
csrf.exempt(bp)

MAX_BODY_BYTES = 64 * 1024
POST_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORMAT = "<any(json, xml):fmt>"
BABEL_LOCALES = {"en": "en", "zh": "zh_CN"}


def response_format() -> str:
    """json or xml: the resource's extension; XML (the spec's required format) otherwise."""
    fmt = (request.view_args or {}).get("fmt") or request.path.rsplit(".", 1)[-1]
    return fmt if fmt in FORMATS else "xml"


def respond(root: str, document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The document in the requested format, UTF-8."""
    body, mimetype = render(root, document, response_format())
    return Response(body, status=status, headers=headers, content_type=f"{mimetype}; charset=utf-8")


def language(locale: str | None) -> str:
    """The language of names and notices: `locale`, else Accept-Language; Chinese by default."""
    return open311.language(locale, request.accept_languages.best_match(["zh", "en"]))


def jurisdiction() -> list[Street]:
    """The streets the request is about (`jurisdiction_id`); 404/400 as the spec lists."""
    return open311.jurisdiction(request.args.get("jurisdiction_id"))


@bp.before_request
def limit_body() -> None:
    """No Open311 request needs more than 64 KB: larger bodies are refused while read (413)."""
    request.max_content_length = MAX_BODY_BYTES


@bp.before_request
def readable_query() -> None:
    """A GET's parameters must be text (valid UTF-8, no NUL): 400 naming them otherwise.

    A POST's are checked with its body, after its api_key (`file_request`).
    """
    if request.method != "POST":
        problems = rawform.problems(request.query_string)
        if problems:
            raise Open311Error(400, *problems)


@bp.errorhandler(Open311Error)
def open311_error(exc: Open311Error) -> Response:
    """The spec's error document, with the status (and headers, e.g. Retry-After) of the error."""
    return respond("errors", exc.document(), exc.status, exc.headers)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """HTTP errors raised while a request is read (413 above all) as the spec's error document."""
    code = exc.code or 500
    description = (f"request body larger than {MAX_BODY_BYTES} bytes" if code == 413
                   else (exc.description or exc.name))
    return respond("errors", [{"code": code, "description": description}], code)


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    """Anything else: 500 with the error document, nothing saved."""
    # Logged with its traceback for operators; the client sees no internals.
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return respond("errors", [{"code": 500, "description": "internal error; nothing was saved"}], 500)


@bp.get(f"/discovery.{FORMAT}")
@bp.get(f"/v2/discovery.{FORMAT}")
def discovery(fmt: str) -> Response:
    """The service discovery document."""
    endpoint = url_for(".services", fmt="xml", _external=True).rsplit("/", 1)[0]
    document = open311.discovery(endpoint, current_app.config["PUBLIC_URL"],
                                 current_app.config.get("ENV") == "production")
    return respond("discovery", document)


@bp.get(f"/v2/services.{FORMAT}")
def services(fmt: str) -> Response:
    """GET Service List (the same services in every street, but the jurisdiction is checked)."""
    jurisdiction()
    return respond("services", open311.service_list(language(request.args.get("locale"))))


@bp.get(f"/v2/services/<code>.{FORMAT}")
def service_definition(code: str, fmt: str) -> Response:
    """GET Service Definition: the service's attributes."""
    jurisdiction()
    category = open311.find_service(code)
    if category is None:
        raise Open311Error(404, f"service_code {code[:64]!r} was not found")
    return respond("service_definition", open311.service_definition(category))


@bp.get(f"/v2/requests.{FORMAT}")
def request_list(fmt: str) -> Response:
    """GET Service Requests, filtered as the spec says (last 90 days, at most 1000)."""
    found = open311.find_requests(jurisdiction(), open311.parse_query(request.args, web.now(), web.local_tz()))
    lang = language(request.args.get("locale"))
    with force_locale(locale_of(BABEL_LOCALES[lang])):
        return respond("service_requests", open311.request_records(found, web.local_tz(), lang))


@bp.get(f"/v2/requests/<number>.{FORMAT}")
def request_by_id(number: str, fmt: str) -> Response:
    """GET Service Request."""
    ticket = open311.find_request(jurisdiction(), number)
    lang = language(request.args.get("locale"))
    with force_locale(locale_of(BABEL_LOCALES[lang])):
        return respond("service_requests", open311.request_records([ticket], web.local_tz(), lang))


@bp.get(f"/v2/tokens/<token>.{FORMAT}")
def token(token: str, fmt: str) -> Response:
    """GET service_request_id from a token."""
    ticket = open311.find_token(jurisdiction(), token)
    return respond("service_requests", [{"service_request_id": ticket.number, "token": token}])


def posted_form() -> tuple[MultiDict[str, str], list[str]]:
    """The POST's arguments (body first, then query string), and what is wrong with the
    text of any of them as sent (`rawform.problems`); 413/415 before anything is read."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Open311Error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    bodiless = not request.mimetype and not request.content_length
    if request.mimetype not in POST_TYPES and not bodiless:
        raise Open311Error(415, "Content-Type must be application/x-www-form-urlencoded "
                                "(or multipart/form-data)")
    # The raw bytes first: the form is then parsed from this cached copy.
    body = request.get_data(cache=True)
    problems = rawform.problems(request.query_string, body, request.mimetype,
                                request.mimetype_params.get("boundary"))
    return CombinedMultiDict([request.form, request.args]), problems


@bp.post(f"/v2/requests.{FORMAT}")
def post_request(fmt: str) -> Response:
    """POST Service Request: 201 with the ticket number and a token."""
    form, unreadable = posted_form()
    filed = file_request(form, web.now(), web.local_tz(), web.photo_store(),
                         current_app.config["MAX_PHOTO_BYTES"], unreadable)
    lang = language(form.get("locale"))
    with force_locale(locale_of(BABEL_LOCALES[lang])):
        return respond("service_requests", filed.document(lang), 201)


@bp.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str) -> Response:
    """Anything else under /open311: the spec's 404, in the format the path asks for."""
    raise Open311Error(404, "no such resource; the endpoints are listed in /open311/discovery.xml")
