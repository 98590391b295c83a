"""How the clients of bench/doors_bench.py talk and write: a browser signed in to the
server with the fields of its forms, multipart bodies, and what residents type.

Kept apart from the doors (bench/doors.py) that use them.
"""
from __future__ import annotations

import random
import string
from html.parser import HTMLParser
from typing import Any

import requests
from harness import DESCRIPTIONS, USER_AGENT

MORE_DESCRIPTIONS = [
    "电梯按钮失灵，按了没反应",
    "楼顶防水层坏了，下雨天顶楼渗水",
    "单元门口的台阶塌了一块，容易绊倒",
    "小区里的健身器材松动了",
    "楼道里堆满了杂物，没人管",
    "暖气片不热，家里才十几度",
    "窗户外的空调架子锈了，担心掉下来",
    "有人在绿化带里乱停车",
]
PATROL_FINDINGS = [
    "巡查发现楼道灯不亮",
    "巡查发现消防通道被杂物堵塞",
    "巡查发现井盖松动",
    "巡查发现外墙瓷砖有脱落风险",
    "巡查发现垃圾分类点满溢",
    "巡查发现电动车在楼道充电",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟"]
SENDERS = ["张阿姨", "李师傅", "王大爷", "刘姐", "陈老师", "3号楼赵叔", "楼长老周"]
GREETINGS = ["", "您好，", "麻烦问一下，", "师傅，"]


# --- what residents write -----------------------------------------------------------


def phone(rng: random.Random) -> str:
    return rng.choice(["139", "138", "186", "152", "177"]) + f"{rng.randrange(10**8):08d}"


def person(rng: random.Random) -> tuple[str, str]:
    """(family name, given name)."""
    return rng.choice(SURNAMES), rng.choice(GIVEN)


def description(rng: random.Random) -> str:
    return rng.choice(DESCRIPTIONS + MORE_DESCRIPTIONS)


def point_in(rng: random.Random, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """(lat, lon) well inside a grid's bounding box (the generated grids are rectangles)."""
    lon0, lat0, lon1, lat1 = box
    return (round(lat0 + (lat1 - lat0) * rng.uniform(0.1, 0.9), 6),
            round(lon0 + (lon1 - lon0) * rng.uniform(0.1, 0.9), 6))


def attributes(rng: random.Random, definitions: list[dict[str, Any]]) -> dict[str, str]:
    """Answers to a category's Open311 attributes: every required one, half of the others."""
    answers = {}
    for definition in definitions:
        if not definition.get("required") and rng.random() < 0.5:
            continue
        kind, code = definition.get("datatype"), f"attribute[{definition['code']}]"
        if kind in ("singlevaluelist", "multivaluelist"):
            answers[code] = rng.choice(definition["values"])["key"]
        elif kind == "number":
            answers[code] = str(rng.randint(1, 18))
        else:
            answers[code] = f"京{rng.choice(string.ascii_uppercase)}{rng.randrange(10**5):05d}"
    return answers


# --- a signed-in browser ------------------------------------------------------------


class FormFields(HTMLParser):
    """The fields a browser would post from a page's forms: inputs, checked boxes,
    textareas, and each select's selected option (else its first)."""

    def __init__(self, action: str | None = None, page: str = "") -> None:
        super().__init__()
        self.action, self.page = action, page
        self.inside = action is None
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is not None:
            self.inside = a.get("action", self.page) == self.action
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "file", "button"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.append((a["name"], a.get("value", "y" if a.get("type") == "checkbox" else "")))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.action is not None:
            self.inside = False
        if tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [v for v, _ in self._options[:1]]
            self.fields.append((self._select, chosen[0] if chosen else ""))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, "".join(self._text).lstrip("\n")))
            self._textarea = None


def form_fields(html: str, action: str | None = None, page: str = "") -> list[tuple[str, str]]:
    """The fields of the page's forms, or of the form posting to `action` (a form
    without an action posts to its `page`)."""
    parser = FormFields(action, page)
    parser.feed(html)
    return parser.fields


class Browser:
    """One client's session against the running server. Cookies are kept by hand: the
    production session cookie is Secure, and the benchmark speaks plain HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **extra}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def request(self, method: str, path: str, data: Any = None) -> requests.Response:
        response = requests.request(method, self.base + path, data=data, headers=self.headers(),
                                    allow_redirects=False, timeout=60)
        for cookie in response.cookies:
            self.cookies[cookie.name] = cookie.value or ""
        return response

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on `path` (its GET also starts the session)."""
        response = self.request("GET", path)
        token = dict(form_fields(response.text, path, path)).get("csrf_token")
        if response.status_code != 200 or not token:
            raise SystemExit(f"GET {path}: {response.status_code}, no CSRF token; see the logs")
        return token

    def sign_in(self, username: str, password: str) -> None:
        token = self.csrf("/auth/login")
        response = self.request("POST", "/auth/login",
                                {"csrf_token": token, "username": username, "password": password})
        if response.status_code not in (302, 303):
            raise SystemExit(f"signing in as {username}: {response.status_code}")




FORM = "application/x-www-form-urlencoded"


def multipart(fields: dict[str, Any], files: tuple[str, ...], rng: random.Random) -> tuple[str, str]:
    """(Content-Type, body) of a form posted as a browser posts a multipart form, each
    file input empty (a part without a file name)."""
    boundary = "----WebKitFormBoundary" + "".join(rng.choices(string.ascii_letters + string.digits, k=16))
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename=""\r\n'
              f"Content-Type: application/octet-stream\r\n\r\n\r\n" for name in files]
    return f"multipart/form-data; boundary={boundary}", "".join(parts) + f"--{boundary}--\r\n"
