"""Drive a running Minhu with the Open311 client libraries on PyPI and report what each did.

Not a test: it needs a live server and the libraries, which are not in requirements.lock.
Run it from a scratch virtualenv, never the project's .venv:

    python3.11 -m venv /tmp/o311 && /tmp/o311/bin/pip install georeport three open311
    export MINHU_INSTANCE=/tmp/o311inst FLASK_APP=wsgi
    .venv/bin/flask db upgrade && .venv/bin/flask demo load
    KEY=$(.venv/bin/flask open311 create-key "client check" 2>/dev/null)
    .venv/bin/flask serve --port 5311 &
    /tmp/o311/bin/python bench/open311_clients.py http://127.0.0.1:5311/open311/v2 "$KEY"

Each library runs the same story where it can, in JSON and in XML: list the services,
read a service definition, file a request, read it back by id, find it in the list,
and turn its token into the id. A step the library has no method for is done with
plain `requests` and labelled so. `three` and `open311` are Python 2 code; the script
reports their import errors, then tries `three` once more with the one-line shim
(`itertools.ifilter = filter`) to see how far its HTTP calls get.
"""
from __future__ import annotations

import argparse
import importlib
import itertools
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests


@dataclass
class Outcome:
    library: str
    step: str
    ok: bool
    detail: str


RESULTS: list[Outcome] = []


def step(library: str, name: str, action: Callable[[], str]) -> Any:
    """Run one step; record OK with its detail, or FAIL with the exception."""
    try:
        detail = action()
    except Exception as exc:  # noqa: BLE001 - a client library may raise anything
        last = traceback.extract_tb(exc.__traceback__)[-1]
        RESULTS.append(Outcome(library, name, False, f"{type(exc).__name__}: {exc} ({last.name}:{last.lineno})"))
        return None
    RESULTS.append(Outcome(library, name, True, detail))
    return detail


def request_form(service: str, definition: dict[str, Any], key: str, address: str, phone: str) -> dict[str, Any]:
    """A POST body for `service`, answering its required attributes with their first value."""
    form: dict[str, Any] = {
        "api_key": key, "service_code": service, "description": "客户端库测试：楼道灯不亮 (client check)",
        "phone": phone, "address_string": address, "first_name": "测试", "last_name": "李",
    }
    attributes = (definition or {}).get("attributes") or []
    if isinstance(attributes, dict):  # xmltodict: {"attribute": one or a list}
        attributes = attributes.get("attribute") or []
        attributes = attributes if isinstance(attributes, list) else [attributes]
    for attribute in attributes:
        if str(attribute.get("required")).lower() != "true":
            continue
        values = attribute.get("values") or []
        if isinstance(values, dict):
            values = values.get("value") or []
            values = values if isinstance(values, list) else [values]
        datatype = attribute.get("datatype")
        answer = {"number": "1", "datetime": datetime.now(UTC).isoformat()}.get(datatype, "x")
        if values:
            answer = str(values[0]["key"])
        name = f"attribute[{attribute['code']}]" + ("[]" if datatype == "multivaluelist" else "")
        form[name] = answer
    return form


def as_list(value: Any) -> list[Any]:
    """xmltodict gives a dict for one element and a list for several."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def run_georeport(root: str, key: str, address: str, phone: str) -> None:
    """georeport 0.3.1: services, definition, requests and request; no POST, no tokens."""
    from georeport import GeoReport

    for fmt in ("json", "xml"):
        lib = f"georeport ({fmt})"
        client = GeoReport(root, output_format=fmt)
        services: list[dict[str, Any]] = []

        def list_services() -> str:
            services.extend(as_list(client.get_service_list()))
            assert services and all("service_code" in s for s in services)
            return f"{len(services)} services, first {services[0]['service_code']!r}"

        step(lib, "get_service_list", list_services)
        if not services:
            continue
        chosen = next((s for s in services if str(s.get("metadata")).lower() == "true"), services[0])
        definition: dict[str, Any] = {}

        def read_definition() -> str:
            definition.update(client.get_service_definition(chosen["service_code"]))
            assert definition["service_code"] == chosen["service_code"]
            return f"{chosen['service_code']}: {len(as_list(definition.get('attributes')))} attribute block(s)"

        step(lib, "get_service_definition", read_definition)
        answer: dict[str, Any] = {}

        def post() -> str:
            response = requests.post(f"{root}/requests.json", timeout=30,
                                     data=request_form(chosen["service_code"], definition, key, address, phone))
            assert response.status_code == 201, response.text
            answer.update(response.json()[0])
            return f"201, service_request_id {answer['service_request_id']}, token {answer['token'][:6]}…"

        step(lib, "POST requests (plain requests: georeport has no POST)", post)
        if not answer:
            continue
        number = answer["service_request_id"]

        def read_one() -> str:
            found = client.get_service_request(number)
            assert found["service_request_id"] == number and found["status"] == "open", found
            return (f"status {found['status']}, address {found['address']!r}, "
                    f"requested {found['requested_datetime']}")

        step(lib, "get_service_request", read_one)

        def read_by_id() -> str:
            found = as_list(client.get_service_requests(service_request_id=number))
            assert [r["service_request_id"] for r in found] == [number], found
            return "found by service_request_id"

        step(lib, "get_service_requests(service_request_id=…)", read_by_id)

        def read_filtered() -> str:
            # A minute ahead: the dates go out to the second, and the request was filed this second.
            end = datetime.now(UTC) + timedelta(minutes=1)
            start = end - timedelta(days=30)
            found = as_list(client.get_service_requests(
                status="open", service_code=chosen["service_code"],
                start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"), end_date=end.strftime("%Y-%m-%dT%H:%M:%SZ")))
            assert number in [r["service_request_id"] for r in found]
            return f"{len(found)} open {chosen['service_code']} requests in the last 30 days"

        step(lib, "get_service_requests(status, service_code, dates)", read_filtered)

        def token() -> str:
            response = requests.get(f"{root}/tokens/{answer['token']}.{fmt}", timeout=30)
            assert response.status_code == 200 and number in response.text, response.text
            return "token → service_request_id"

        step(lib, "GET tokens (plain requests: georeport has no token call)", token)


def run_open311() -> None:
    """open311 1.1 (2011): Python 2 only."""
    step("open311", "import open311", lambda: str(importlib.import_module("open311")))


def run_three(root: str, key: str, address: str, phone: str) -> None:
    """three 0.8.0: Python 2 only; then again with `itertools.ifilter = filter`."""
    step("three", "import three", lambda: str(importlib.import_module("three")))
    itertools.ifilter = filter  # type: ignore[attr-defined]  # the shim: Python 2's lazy filter
    sys.modules.pop("three", None)
    sys.modules.pop("three.core", None)
    core = step("three (shimmed)", "import three.core", lambda: "imported")
    if core is None:
        return
    from three.core import Three

    for fmt in ("json", "xml"):
        lib = f"three (shimmed, {fmt})"
        client = Three(root, format=fmt, api_key=key)
        services = step(lib, "services()", lambda: repr(client.services())[:80])
        if services is None:
            continue
        answer: dict[str, Any] = {}

        def post() -> str:
            form = request_form("repair.stair_light", {}, key, address, phone)
            form.pop("api_key")
            code = form.pop("service_code")
            result = client.post(code, **form)
            assert client.post_response.status_code == 201, client.post_response.text
            answer.update(result[0] if isinstance(result, list) else result["request"])
            return f"201, service_request_id {answer['service_request_id']}"

        step(lib, "post()", post)
        step(lib, "services(code)", lambda: repr(client.services("repair.stair_light"))[:80])
        if answer:
            step(lib, "request(id)", lambda: repr(client.request(answer["service_request_id"]))[:80])
            step(lib, "token(token)", lambda: repr(client.token(answer["token"]))[:80])
        step(lib, "requests()", lambda: f"{len(client.requests())} requests")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoint", help="e.g. http://127.0.0.1:5311/open311/v2")
    parser.add_argument("api_key", help="an Open311 key (flask open311 create-key NAME)")
    parser.add_argument("--address", default="东怡街79号院3栋", help="an address_string the server can place")
    parser.add_argument("--phone", default="13812345678", help="the requester's mobile number")
    args = parser.parse_args()
    root = args.endpoint.rstrip("/")
    run_georeport(root, args.api_key, args.address, args.phone)
    run_open311()
    run_three(root, args.api_key, args.address, args.phone)
    width = max(len(r.library) for r in RESULTS)
    for result in RESULTS:
        print(f"{'OK  ' if result.ok else 'FAIL'}  {result.library:<{width}}  {result.step}: {result.detail}")
    # georeport is the one library that runs on Python 3: its steps must all pass.
    return 0 if all(r.ok for r in RESULTS if r.library.startswith("georeport")) else 1


if __name__ == "__main__":
    sys.exit(main())
