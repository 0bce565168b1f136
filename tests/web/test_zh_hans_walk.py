"""Every page in Chinese: each server-rendered page, walked as each role that may open it, shows no
English word that is not user data or on a short allow-list, and writes dates one way.

The pages come from the URL configuration (tests/url_routes.py through the route matrix), on the
matrix's scene (tests/test_route_matrix.build_scene) and only for the roles its MATRIX names; the
API (JSON) is left out, the admin is walked through its index and each model's list. A page's text
is read with the standard library's HTML parser (script and style skipped). Words in ASCII letters
are allowed when they are the scene's own data (usernames, frame numbers, brands …: any free-text
value stored in the database, code fields left out) or on ALLOWED (abbreviations Chinese text uses
as they are). Text the browser's scripts fill in is checked by the JavaScript catalogue test below.
"""

import json
import re
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.db import models, transaction
from django.test import Client

from tests import factories
from tests.test_route_matrix import (
    ADMINS,
    ANON,
    CLERK,
    MATRIX,
    PERSONAS,
    SIGNS_OUT,
    SYSADMIN,
    Scene,
    build_scene,
    routes,
)
from tests.test_route_matrix import _client as persona_client
from tests.test_route_matrix import _url as route_url

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}

# Words in Latin letters that Chinese pages of this kind write as they are.
ALLOWED = {
    # identifiers, standards and protocols
    "IMEI",
    "SIM",
    "SOS",
    "CCC",
    "JT",
    "GB",
    "GT",
    "OsmAnd",
    "GNSS",
    "GPS",
    "QR",
    "ID",
    "IP",
    "TOTP",
    # file formats and technical names
    "API",
    "PDF",
    "JSON",
    "CSV",
    "Excel",
    "URL",
    "HTTP",
    "HTTPS",
    "Ed",
    "SHA",
    "OpenAPI",
    "Swagger",
    # units
    "km",
    "h",
    "m",
    "min",
    "MB",
    "kB",
    # the language switch names each language in itself
    "English",
    # names Chinese text writes in Latin letters
    "Concox",
    "Webhook",
    "UTF",
    # Django's hint under a multiple choice: 按住 Control 键或 Mac 上的 Command 键来选择多项
    "Control",
    "Mac",
    "Command",
}
# Routes that are no pages: redirects, file downloads, the language switch, health and the schema.
NOT_PAGES = {"favicon", "healthz", "set_language", "schema", "logout"}
# Database fields that hold codes, not what people typed: their values are not user data.
CODE_FIELDS = {
    "kind",
    "status",
    "action",
    "channel",
    "method",
    "protocol",
    "basis",
    "event",
    "object_type",
    "source",
    "codename",
    "app_label",
    "model",
    "to_status",
    "from_status",
    "owner_answer",
    "role",
    "message",  # a notification's message key (cases.alerts.notification_texts)
    "link",
    "url",
}
CODE_MODELS = {"accounts.auditentry", "accounts.auditseal", "auth.permission", "contenttypes.contenttype"}

WORD = re.compile(r"[A-Za-z][A-Za-z_]*(?:[.:][A-Za-z_]+)*")
# Dates as Django's own zh_Hans or en formats write them (2026年12月6日, Dec. 6, 2026), and times
# with seconds (2026-12-06 14:03:27, 14:03:27): a second format beside 2026-12-06 14:03.
OTHER_DATE = re.compile(
    r"\d{4}年\d{1,2}月(?:\d{1,2}日)?"
    r"|\b(?:Jan|Feb|March|April|May|June|July|Aug|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}"
    r"|(?:\d{4}-\d{2}-\d{2}[ T])?\b\d{1,2}:\d{2}:\d{2}\b"
)


class TextNodes(HTMLParser):
    # code: what is typed as it is (a file's header, a command)
    SKIP = {"script", "style", "template", "code"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skipping:
            self.texts.append(text)


def text_nodes(html: str) -> list[str]:
    parser = TextNodes()
    parser.feed(html)
    parser.close()
    return parser.texts


def user_data() -> set[str]:
    """The words of every free-text value stored now (names, addresses, brands, usernames …)."""
    words: set[str] = set()
    for model in apps.get_models():
        if model._meta.label_lower in CODE_MODELS:
            continue
        fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField)
            and not isinstance(f, models.URLField)
            and not f.choices
            and f.name not in CODE_FIELDS
        ]
        if not fields:
            continue
        for row in model._default_manager.values_list(*fields):
            for value in row:
                for token in str(value or "").split():
                    if not _identifier(token):  # skipped on the pages too
                        words.update(WORD.findall(token))
    return words


# A stored code's prefix on a value: open_report:…, case:…, trajectory.view.
CODE_PREFIX = re.compile(r"[a-z][a-z_]*(?=:)|[a-z]+_[a-z_]+|[a-z_]+\.[a-z_]+")
# Setting names (LOGIN_FAILURE_LIMIT) name the environment variable that sets the default.
SETTING = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def _identifier(token: str) -> bool:
    """Letters mixed with digits (GT06, A1302…, a key in base32), a masked value (ab****) or a setting's name."""
    return bool(re.search(r"[A-Za-z]", token) and re.search(r"[\d*]", token)) or bool(SETTING.fullmatch(token))


def stray_words(html: str, data: set[str]) -> list[str]:
    found = []
    for text in text_nodes(html):
        words = []
        for token in text.split():
            # An identifier is data, but a code stuck to one is not (open_report:JJ…, case:玉公…).
            words.extend(CODE_PREFIX.findall(token) if _identifier(token) else WORD.findall(token))
        for word in words:
            letters = re.sub(r"[^A-Za-z]", "", word)
            if len(letters) < 2 or word in ALLOWED or word in data:
                continue
            found.append(f"{word!r} in {text[:80]!r}")
        found.extend(f"date {match!r} in {text[:80]!r}" for match in OTHER_DATE.findall(text))
    return found


def pages(persona: str) -> list[tuple[str, str]]:
    """(route name, path) of each page the persona may open."""
    chosen = []
    for name, path in sorted(routes().items()):
        if persona not in MATRIX.get(name, set()) or name in NOT_PAGES or name in SIGNS_OUT or path.startswith("api/"):
            continue
        chosen.append((name, path))
    if persona in ADMINS:
        chosen.append(("admin:index", "admin/"))
    return chosen


def walk(client: Client, persona: str, scene: Scene) -> tuple[dict[str, list[str]], list[str]]:
    """(the stray words of each page, the pages read)."""
    strays: dict[str, list[str]] = {}
    read: list[str] = []
    data = user_data()
    urls = [
        (name, "/" + path if name.startswith("admin:") else route_url(name, path, scene.ids))
        for name, path in pages(persona)
    ]
    if persona == SYSADMIN:  # an account's page: its groups and permissions by name
        urls.append(("admin:accounts_user_change", f"/admin/accounts/user/{scene.users[CLERK].pk}/change/"))
    for name, url in urls:
        sid = transaction.savepoint()
        try:
            response = client.get(url, **ZH)
        finally:
            transaction.savepoint_rollback(sid)
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            continue
        read.append(name)
        found = stray_words(response.content.decode(), data)
        if found:
            strays[f"{name} {url}"] = found
    return strays, read


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_page_speaks_chinese_to_every_role(persona, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    scene = build_scene()
    client = persona_client(persona, scene) if persona != ANON else Client()
    strays, read = walk(client, persona, scene)
    assert strays == {}
    assert "login" in read if persona == ANON else "vehicles:home" in read or persona in ADMINS
    assert len(read) >= {ANON: 3, SYSADMIN: 5}.get(persona, 4), read


def test_the_walk_finds_codes_english_and_a_second_date_format():
    page = """<html><head><style>.a{color:red}</style><script>var x = "status";</script></head>
    <body><h1>登记 玉A00001</h1><p>stated_reason</p><td>Choose 组 by selecting them</td>
    <p>依据 case:A1302290500002026120001</p>
    <p>IMEI 86012345678901 · JT/T 808 · 张伟 zhangwei</p>
    <p>2026年12月6日 14:03</p><p>2026-12-06 14:03</p><p>2026-12-06 14:03:27</p><p>收到 14:03:27</p></body></html>"""
    found = stray_words(page, {"zhangwei"})
    assert found == [
        "'stated_reason' in 'stated_reason'",
        "'Choose' in 'Choose 组 by selecting them'",
        "'by' in 'Choose 组 by selecting them'",
        "'selecting' in 'Choose 组 by selecting them'",
        "'them' in 'Choose 组 by selecting them'",
        "'case' in '依据 case:A1302290500002026120001'",
        "date '2026年12月6日' in '2026年12月6日 14:03'",
        "date '2026-12-06 14:03:27' in '2026-12-06 14:03:27'",
        "date '14:03:27' in '收到 14:03:27'",
    ]


def test_the_admin_says_its_name_and_permissions_in_chinese(client):
    root = factories.user("clerk", is_staff=True, is_superuser=True)
    client.force_login(root)
    group_page = client.get("/admin/auth/group/add/", **ZH).content.decode()
    assert "Django" not in group_page
    assert "电动自行车户籍化管理系统" in group_page
    assert "可添加用户" in group_page or "可添加 用户" in group_page
    assert "Can add" not in group_page and "Can view" not in group_page
    assert "可查询备案记录" in group_page  # a permission of our own (vehicles.search_records)
    assert stray_words(group_page, user_data()) == []


def test_the_admin_javascript_speaks_chinese(client):
    """The two-box selector of groups and permissions is filled in by Django's SelectFilter2.js from
    the admin's JavaScript catalogue; Django's zh_Hans one lacks its newer strings, ours adds them."""
    admin = factories.user("clerk", is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.get("/admin/jsi18n/", **ZH)
    assert response.status_code == 200
    catalogue = json.loads(re.search(r"const newcatalog = (\{.*?\});\n", response.content.decode(), re.S)[1])
    assert (
        catalogue['Choose %s by selecting them and then select the "Choose" arrow button.']
        == "选中左侧的%s，再点“选择”箭头加入。"
    )
    assert catalogue["Choose all %s"] == "全选%s"
    assert catalogue["Remove all %s"] == "全部移除%s"
    assert catalogue["Available %s"] == "可用 %s"  # Django's own entries are still there
