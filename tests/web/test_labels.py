"""Codes shown by their names (accounts.labels): legal bases on the trace page and in the audit list,
alarm kinds in the statistics table and chart, audit actions and objects in the audit list; and one
date format per kind in both languages."""

import datetime
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone, translation

from accounts import labels
from accounts.audit import audit_record
from accounts.models import User
from accounts.services import administrator_role_grant
from tests import factories
from tests.tracking import factories as tf
from tests.web.scene import stolen_bike
from tracking.ingest import TERMINAL_ALARMS
from tracking.models import Alarm

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.mark.parametrize(
    ("basis", "zh", "en"),
    [
        ("owner", "车主本人", "owner"),
        ("open_report:JJ130229012026120600001", "承办在办报案 JJ130229012026120600001", "open theft report"),
        (
            "case:玉公（刑）立字〔2026〕42号",
            "承办案件 玉公（刑）立字〔2026〕42号",
            "duty on case 玉公",
        ),
        ("stated_reason", "陈述理由（列入所领导审查）", "stated reason"),
        ("open_reports", "巡查职责", "patrol duty"),
    ],
)
def test_a_legal_basis_reads_as_a_sentence_in_both_languages(basis, zh, en):
    template = Template("{% load labels %}{{ basis|basis }}")
    with translation.override("zh-hans"):
        assert zh in template.render(Context({"basis": basis}))
    with translation.override("en"):
        assert en in template.render(Context({"basis": basis}))


def test_the_trace_page_names_the_basis_not_its_code(client, officer):
    bike = stolen_bike(officer)
    client.force_login(officer)
    html = client.get(reverse("web:trace", args=[bike.vehicle.pk]), **ZH).content.decode()
    assert f"承办在办报案 {bike.report.number}" in html
    assert "open_report:" not in html


def test_the_audit_list_names_actions_objects_and_bases():
    auditor = User.objects.create_user(username="auditor-labels", password="correct-horse-battery-9")
    administrator_role_grant(username="auditor-labels", role="auditadmin", granted_by="test")
    officer = factories.user("officer")
    audit_record(user=officer, action="trajectory.view", object_type="vehicle", object_id=7, query={"basis": "case:X1"})
    audit_record(user=officer, action="stolen.near", object_type="vehicle", query={"basis": "stated_reason"})
    client = Client()
    client.force_login(auditor)
    html = client.get("/admin/accounts/auditentry/", **ZH).content.decode()
    for shown in ("轨迹", "车辆", "承办案件 X1", "陈述理由"):
        assert shown in html, shown
    for code in ("trajectory.view", "stolen.near", "case:X1", "stated_reason"):
        assert f">{code}<" not in html, code  # neither in a cell nor as a filter choice
    filtered = client.get("/admin/accounts/auditentry/", {"action": "stolen.near"}, **ZH)
    assert filtered.context["cl"].result_count == 1


def test_alarm_kinds_read_as_names_in_the_statistics_table_and_chart(admin_user):
    term = tf.terminal()
    now = timezone.now()
    for kind in ("sos", "stolen_sighting"):
        Alarm.objects.create(terminal=term, vehicle=term.vehicle, kind=kind, at=now - datetime.timedelta(hours=2))
    client = Client()
    client.force_login(admin_user)
    response = client.get("/stats/", **ZH)
    html = response.content.decode()
    with translation.override("zh-hans"):
        sighted, sos = labels.alarm_label("stolen_sighting"), labels.alarm_label("sos")
    assert sighted == "发现被盗车辆行踪"
    assert f">{sighted}<" in html and f">{sos}<" in html  # table cells
    assert ">stolen_sighting<" not in html
    chart = response.context["charts"]["alarms"]["labels"]
    assert sorted(chart) == sorted([sighted, sos])


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_one_date_format_per_kind_in_both_languages(language):
    moment = datetime.datetime(2026, 12, 6, 14, 3)
    with translation.override(language):
        assert formats.date_format(moment.date()) == "2026-12-06"
        assert formats.date_format(moment, "DATETIME_FORMAT") == "2026-12-06 14:03"
        assert formats.date_format(moment, "SHORT_DATETIME_FORMAT") == "2026-12-06 14:03"
        rendered = Template("{{ d }} / {{ d|date }} / {{ t }}").render(Context({"d": moment, "t": moment.date()}))
        assert rendered == "2026-12-06 14:03 / 2026-12-06 / 2026-12-06"


def test_a_record_page_writes_its_dates_one_way(client, clerk):
    vehicle = tf.terminal(clerk=clerk).vehicle
    client.force_login(clerk)
    html = client.get(reverse("vehicles:detail", args=[vehicle.pk]), **ZH).content.decode()
    registered = timezone.localtime(vehicle.registered_at)
    assert f"{registered:%Y-%m-%d}" in html
    assert f"{registered:%Y}年" not in html  # Django's own zh_Hans format: 2026年12月6日


ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "vehicles", "tracking", "cases", "stats", "web")


def _audit_calls() -> list[str]:
    calls = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                calls.extend(re.findall(r"audit_record\((.*?)\)\n", path.read_text(encoding="utf-8"), re.S))
    return calls


def test_every_audit_action_and_object_the_code_writes_has_a_name():
    calls = _audit_calls()
    actions = {a for call in calls for a in re.findall(r'action="([a-z_]+\.[a-z_]+)"', call)}
    actions |= {a for call in calls for a in re.findall(r'"([a-z_]+\.[a-z_]+)" if ', call)}
    objects = {o for call in calls for o in re.findall(r'object_type="([a-z_]+)"', call)}
    assert len(actions) > 40 and "trajectory.view" in actions  # the scan finds them
    assert sorted(actions - labels.AUDIT_ACTIONS.keys()) == []
    assert sorted(objects - labels.OBJECT_TYPES.keys()) == []


def test_every_alarm_kind_a_terminal_or_the_system_raises_has_a_name():
    derived = {"stolen_sighting", "offline", "displacement", "terminal_conflict"}
    assert sorted((set(TERMINAL_ALARMS) | derived) - labels.ALARM_KINDS.keys()) == []
    with translation.override("zh-hans"):
        untranslated = [kind for kind in labels.ALARM_KINDS if kind != "sos" and labels.alarm_label(kind).isascii()]
    assert untranslated == []
