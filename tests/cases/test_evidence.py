"""Evidence export on the real database: a bike with a known trajectory (stored through
ingest_fixes), its theft report, the signed bundle and its PDF, and the verifier catching a change
of one byte."""

import datetime
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone, translation
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from cases.evidence import pdf as evidence_pdf
from cases.evidence import services as evidence
from cases.workflow.services import VehicleQuery, case_link, report_assign, report_take, report_transition
from tests import factories
from tests.cases.casework import approved_case, case_number, report_step
from tests.tracking import factories as tf
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import TerminalInstallation, TerminalSession
from tracking.protocols.common import Fix
from vehicles.models import Plate

pytestmark = pytest.mark.django_db

STEP = datetime.timedelta(seconds=30)
SQUARE = (39.8826, 117.7390)


@pytest.fixture(autouse=True)
def _key_file(settings, tmp_path):
    settings.EVIDENCE_SIGNING_KEY_FILE = tmp_path / "keys" / "evidence-ed25519.pem"
    return settings.EVIDENCE_SIGNING_KEY_FILE


@pytest.fixture
def base():
    return timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(hours=3)


@pytest.fixture
def scene(officer, base):
    """A bike ridden 2 km east into the square, parked there 30 minutes, then ridden north: 120
    fixes 30 s apart, then its theft report (last seen before the first fix)."""
    terminal = tf.terminal()
    TerminalInstallation.objects.filter(terminal=terminal).update(installed_at=base - datetime.timedelta(days=1))
    fixes = []
    for i in range(120):
        if i < 20:
            place = (SQUARE[0], SQUARE[1] - (20 - i) * 0.00117)  # ~100 m a fix
            speed = 12.0
        elif i <= 80:
            place = (SQUARE[0] + (i % 3) * 0.00001, SQUARE[1])
            speed = 0.0
        else:
            place = (SQUARE[0] + (i - 80) * 0.0009, SQUARE[1])
            speed = 12.0
        fixes.append(
            Fix(time=base + i * STEP, latitude=place[0], longitude=place[1], valid=True, speed_kmh=speed, course=90.0)
        )
    # The terminal sent them over one gateway connection, from a carrier's address.
    session = TerminalSession.objects.create(
        terminal=terminal,
        protocol=terminal.protocol,
        remote_address="203.0.113.7",
        remote_port=40123,
        via_address="10.0.0.5",
        node="gw-1:100",
        started_at=base - STEP,
        last_heard_at=base + 120 * STEP,
        ended_at=base + 121 * STEP,
        end_reason="peer_closed",
    )
    assert ingest_fixes([Incoming(terminal.pk, f, session.pk) for f in fixes]).stored == 120
    report = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=terminal.vehicle).number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=base - datetime.timedelta(minutes=10),
        missing_at=base + datetime.timedelta(hours=1),
        place_address="玉田县无终街道兴隆路超市门口",
        narrative="车停在超市门口，上锁，一小时后不见。",
    )
    report = report_step(user=officer, report_id=report.pk, to_status="filed_criminal", note="价值 2999 元")
    return {"report": report, "vehicle": terminal.vehicle, "fixes": fixes}


def export(api, report, **body):
    return api.post(f"/api/v1/theft-reports/{report.pk}/evidence", {"format": "json", **body}, format="json")


def verify(path: Path, *keys: Path) -> str:
    """Run the command; returns stdout, raises CommandError (with returncode) when not intact."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    args = [str(path)] + [f"--public-key={k}" for k in keys]
    try:
        call_command("verify_evidence", *args, stdout=out, stderr=err)
    except CommandError as exc:
        exc.stderr_text = err.getvalue()  # type: ignore[attr-defined]
        raise
    return out.getvalue()


# --- the bundle ----------------------------------------------------------------------------------------


def test_the_bundle_holds_the_record_report_points_stops_and_audit_trail(officer_api, officer, scene, tmp_path):
    response = export(officer_api, scene["report"], reason="检察院调取证据")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    bundle = json.loads(response.content)
    content, manifest = bundle["content"], bundle["manifest"]
    report, vehicle = scene["report"], scene["vehicle"]

    assert manifest["subject"] == {"type": "theft_report", "id": report.pk, "number": report.number}
    assert manifest["basis"] == [f"open_report:{report.number}"]
    assert content["reports"][0]["number"] == report.number
    assert [t["to"] for t in content["reports"][0]["workflow"]] == ["received", "filed_criminal"]
    record = content["vehicles"][0]
    assert record["frame_number"] == vehicle.frame_number
    assert record["owner"]["id_number"] == vehicle.owner.id_number  # officers see full identity
    assert [e["kind"] for e in record["history"]] == ["register", "mark_stolen"]
    (track,) = content["trajectories"]
    assert track["count"] == 120 and len(track["points"]) == 120 and not track["truncated"]
    first = track["points"][0]
    assert datetime.datetime.fromisoformat(first["time"]) == scene["fixes"][0].time
    assert (first["lat"], first["lon"]) == (round(scene["fixes"][0].latitude, 7), round(scene["fixes"][0].longitude, 7))
    (stop,) = content["stops"]
    assert stop["dwell_minutes"] == pytest.approx(30, abs=1)
    # Where each position came from: its session, and the session's addresses.
    (session,) = content["sessions"]
    assert {p["session"] for p in track["points"]} == {session["id"]}
    where = (session["remote_address"], session["remote_port"], session["via_address"])
    assert where == ("203.0.113.7", 40123, "10.0.0.5")
    actions = [e["action"] for e in content["audit"]]
    assert "theft_report.take" in actions and "theft_report.transition" in actions
    # One hashed section per 500 points at most, each report, vehicle and audit entry.
    assert "trajectories[0].points[0:120]" in manifest["sections"]

    # The export is audited with the digest of what was handed out.
    entry = AuditEntry.objects.get(action="evidence.export", object_id=str(report.pk))
    assert entry.user == officer and entry.reason == "检察院调取证据" and entry.result_count == 120
    assert entry.query["manifest_sha256"] == response["X-Evidence-Manifest-SHA256"] == evidence.sha256(manifest)

    path = tmp_path / "bundle.json"
    path.write_bytes(response.content)
    assert verify(path).startswith(f"OK: {path} is intact: theft_report {report.number}")


def test_one_changed_byte_is_caught_and_named(officer_api, scene, tmp_path):
    raw = export(officer_api, scene["report"]).content
    key_pem = tmp_path / "public.pem"
    key_pem.write_text(officer_api.get("/api/v1/evidence/public-key").json()["public_key_pem"])

    def tampered(old: bytes, new: bytes, name: str) -> Path:
        assert len(old) == len(new) and raw.count(old) >= 1
        path = tmp_path / name
        path.write_bytes(raw.replace(old, new, 1))
        assert sum(a != b for a, b in zip(raw, path.read_bytes(), strict=True)) == 1
        return path

    # A position: one digit of the 30th point's latitude.
    point = json.loads(raw)["content"]["trajectories"][0]["points"][29]
    lat = json.dumps(point["lat"]).encode()
    moved = tampered(b'"lat": ' + lat, b'"lat": ' + lat[:-1] + (b"1" if lat[-1:] != b"1" else b"2"), "moved.json")
    with pytest.raises(CommandError) as excinfo:
        verify(moved, key_pem)
    assert excinfo.value.returncode == 1
    assert "Altered: trajectory points 1–120 of vehicle" in excinfo.value.stderr_text
    assert "signature" not in excinfo.value.stderr_text  # the manifest itself is intact

    # The narrative of the report.
    story = tampered("一小时后不见".encode(), "两小时后不见".encode()[:3] + "一小时后不见".encode()[3:], "story.json")
    with pytest.raises(CommandError) as excinfo:
        verify(story, key_pem)
    assert f"Altered: theft report {scene['report'].number}" in excinfo.value.stderr_text

    # The manifest (its export time): the signature no longer verifies.
    created = json.loads(raw)["manifest"]["created_at"].encode()
    stamp = tampered(created, created[:-1] + (b"1" if created[-1:] != b"1" else b"2"), "stamp.json")
    with pytest.raises(CommandError) as excinfo:
        verify(stamp, key_pem)
    assert "The signature does not match the manifest" in excinfo.value.stderr_text

    # A byte that breaks the JSON itself.
    broken = tampered(b'"format"', b'"format!', "broken.json")
    with pytest.raises(CommandError) as excinfo:
        verify(broken, key_pem)
    assert "not valid JSON at line" in excinfo.value.stderr_text


def test_a_bundle_re_signed_with_another_key_is_refused(officer_api, scene, tmp_path):
    bundle = json.loads(export(officer_api, scene["report"]).content)
    bundle["content"]["reports"][0]["narrative"] = "改写的案情"
    forger = Ed25519PrivateKey.generate()
    bundle["manifest"]["sections"] = {p: evidence.sha256(v) for p, v in evidence.sections(bundle["content"]).items()}
    bundle["manifest"]["key"] = {
        "algorithm": "Ed25519",
        "public_key": evidence.base64.b64encode(evidence.public_raw(forger.public_key())).decode(),
        "fingerprint": evidence.fingerprint(forger.public_key()),
    }
    bundle["signature"]["value"] = evidence.base64.b64encode(
        forger.sign(evidence.canonical(bundle["manifest"]))
    ).decode()
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False))
    with pytest.raises(CommandError) as excinfo:
        verify(path)  # on the server: its own key is the trusted one
    assert "not with the bureau's key" in excinfo.value.stderr_text
    # The public verify endpoint says the same.
    answer = Client().post("/api/v1/evidence/verify", path.read_bytes(), content_type="application/json").json()
    assert answer["valid"] is False and "not with the bureau's key" in answer["problems"][0]


def test_the_command_exits_non_zero_from_the_shell(officer_api, scene, tmp_path, _key_file):
    raw = export(officer_api, scene["report"]).content
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_bytes(raw)
    bad.write_bytes(raw.replace(b'"speed_kmh": 12.0', b'"speed_kmh": 13.0', 1))
    key = tmp_path / "public.pem"
    key.write_text(evidence.public_key_pem(evidence.server_public_key()))
    env = {**os.environ, "EVIDENCE_SIGNING_KEY_FILE": str(tmp_path / "absent.pem")}
    manage = [sys.executable, str(Path(django_settings.BASE_DIR) / "manage.py"), "verify_evidence"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*manage, *args], capture_output=True, text=True, env=env, check=False)  # noqa: S603

    ok = run(str(good), "--public-key", str(key))
    assert ok.returncode == 0, ok.stderr
    assert "is intact" in ok.stdout
    altered = run(str(bad), "--public-key", str(key))
    assert altered.returncode == 1
    assert "ALTERED: Altered: trajectory points 1–120" in altered.stderr and "NOT intact" in altered.stderr
    missing = run(str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "Cannot read the bundle" in missing.stderr
    # Without the server's key or a trusted key, it says it only checked the key inside.
    alone = run(str(good))
    assert alone.returncode == 0 and "key inside the bundle only" in alone.stderr


def test_the_pdf_is_printable_chinese_and_carries_the_digest(officer_api, scene):
    response = export(officer_api, scene["report"], format="pdf", reason="法院调取证据材料")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and b"STSong-Light" in response.content
    assert len(response.content) > 5000
    entry = AuditEntry.objects.get(action="evidence.export", query__format="pdf")
    assert entry.query["manifest_sha256"] == response["X-Evidence-Manifest-SHA256"]


def test_the_pdf_writes_times_as_the_pages_do_while_the_bundle_keeps_the_seconds(officer_api, scene):
    """One date-time format (2026-11-28 10:15) on paper as on the pages, in either language."""
    bundle = json.loads(export(officer_api, scene["report"], format="json").content)
    received = bundle["content"]["reports"][0]["received_at"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}.*\+08:00", received)
    for language in ("zh-hans", "en"):
        with translation.override(language):
            assert evidence_pdf._time(received) == received[:16].replace("T", " ")
            assert evidence_pdf._time("2026-11-28T10:15:30.250000+08:00") == "2026-11-28 10:15"
            assert evidence_pdf._time("2026-11-28") == "2026-11-28"


def test_a_case_bundle_covers_its_linked_reports(officer_api, officer, scene, tmp_path):
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕101号", kind="criminal", officers=[officer])
    case_link(user=officer, case_id=case.pk, report_id=scene["report"].pk)
    response = officer_api.post(f"/api/v1/cases/{case.pk}/evidence", {"format": "json"}, format="json")
    assert response.status_code == 200, response.content[:300]
    bundle = json.loads(response.content)
    assert bundle["content"]["case"]["number"] == case.number
    assert [r["number"] for r in bundle["content"]["reports"]] == [scene["report"].number]
    assert any(e["action"] == "case.link" for e in bundle["content"]["audit"])
    path = tmp_path / "case.json"
    path.write_bytes(response.content)
    assert "intact" in verify(path)


def test_a_case_numbered_in_chinese_downloads_under_its_number(officer_api, officer, scene):
    """RFC 6266: `attachment` with an ASCII name and the real one in `filename*`; never an RFC 2047
    word, which browsers ignore and then show the JSON inline."""
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕103号", kind="criminal", officers=[officer])
    case_link(user=officer, case_id=case.pk, report_id=scene["report"].pk)
    for fmt in ("json", "pdf"):
        response = officer_api.post(f"/api/v1/cases/{case.pk}/evidence", {"format": fmt}, format="json")
        assert response.status_code == 200, response.content[:300]
        header = response["Content-Disposition"]
        assert header.startswith('attachment; filename="evidence-'), header
        assert header.isascii() and "=?utf-8?" not in header.lower()
        fallback = re.search(r'filename="([^"]*)"', header).group(1)
        assert fallback.isascii() and fallback.endswith(f".{fmt}")
        encoded = re.search(r"filename\*=UTF-8''(\S+)", header).group(1)
        name = unquote(encoded, errors="strict")
        assert name.startswith("evidence-玉公刑立字〔2026〕103号-") and name.endswith(f".{fmt}")


# --- refusals -------------------------------------------------------------------------------------------


def test_bad_input_is_400_naming_the_field_and_nothing_is_exported(officer_api, officer, scene, clerk_api):
    report = scene["report"]
    bad = export(officer_api, report, format="docx")
    assert bad.status_code == 400 and "format" in bad.json()
    later = timezone.now() - datetime.timedelta(hours=1)
    bad = export(officer_api, report, since=later.isoformat(), until=(later - datetime.timedelta(hours=1)).isoformat())
    assert bad.status_code == 400 and "until" in bad.json()
    unregistered = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(),
        unregistered_description="红色爱玛，无牌",
        reporter_name="李四",
        reporter_phone="13900001111",
        last_seen_at=timezone.now() - datetime.timedelta(hours=3),
        missing_at=timezone.now() - datetime.timedelta(hours=1),
        place_address="玉田县",
    )
    bad = export(officer_api, unregistered)
    assert bad.status_code == 400 and "report" in bad.json()
    empty = approved_case(filer=officer, number=case_number(), kind="criminal", officers=[officer])
    bad = officer_api.post(f"/api/v1/cases/{empty.pk}/evidence", {}, format="json")
    assert bad.status_code == 400 and "case" in bad.json()
    assert clerk_api.post(f"/api/v1/theft-reports/{report.pk}/evidence", {}, format="json").status_code == 403
    assert officer_api.post("/api/v1/theft-reports/999999/evidence", {}, format="json").status_code == 404
    assert not AuditEntry.objects.filter(action="evidence.export").exists()


def test_evidence_needs_the_duty_itself_a_stated_reason_is_not_enough(officer_api, officer, scene):
    report = report_transition(user=officer, report_id=scene["report"].pk, to_status="recovered", note="找回")
    report = report_transition(user=officer, report_id=report.pk, to_status="returned", note="")
    report_transition(user=officer, report_id=report.pk, to_status="closed", note="")
    refused = export(officer_api, report, reason="法院调取证据材料")  # the report is closed: no duty left
    assert refused.status_code == 403 and "officers" in refused.json()["detail"]
    entry = AuditEntry.objects.get(action="evidence.export")
    assert "refused" in entry.query and entry.reason == "法院调取证据材料"
    # The case the report belongs to keeps the duty: its officer exports, over the report's period,
    # which ends when the bike was recovered.
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕102号", kind="criminal", officers=[officer])
    case_link(user=officer, case_id=case.pk, report_id=report.pk)
    allowed = officer_api.post(f"/api/v1/cases/{case.pk}/evidence", {"format": "json"}, format="json")
    assert allowed.status_code == 200, allowed.content[:300]
    track = json.loads(allowed.content)["content"]["trajectories"][0]
    assert track["count"] == 120
    assert json.loads(allowed.content)["manifest"]["basis"] == [f"case:{case.number}"]


def test_an_officer_of_another_station_cannot_export_a_report_he_has_no_duty_on(scene):
    stranger = factories.user("officer", station_code="13022902")
    client = APIClient()
    client.force_authenticate(stranger)
    refused = export(client, scene["report"], reason="协助外所调查取证")
    assert refused.status_code == 403
    assert AuditEntry.objects.get(action="evidence.export", user=stranger).query["refused"]
    # Assigned by the report's station leader, he has the report's duty and exports it.
    leader = factories.user("admin", station_code=scene["report"].station.code)
    report_assign(leader=leader, report_id=scene["report"].pk, officers=[stranger])
    assert export(client, scene["report"]).status_code == 200


def test_the_signing_key_is_created_once_with_owner_only_permissions(_key_file):
    path, created = evidence.signing_key_ensure()
    assert created and path == _key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = evidence.fingerprint(evidence.server_public_key())
    assert evidence.signing_key_ensure() == (path, False)
    assert evidence.fingerprint(evidence.server_public_key()) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


# --- pages and schema -------------------------------------------------------------------------------------


def test_officer_exports_from_the_report_page(officer, scene, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client = Client()
    client.force_login(officer)
    page = client.get(f"/reports/{scene['report'].pk}/").content.decode()
    assert f"/reports/{scene['report'].pk}/evidence/" in page
    pdf = client.post(f"/reports/{scene['report'].pk}/evidence/", {"format": "pdf", "reason": ""})
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    bad = client.post(f"/reports/{scene['report'].pk}/evidence/", {"format": "zip"})
    assert bad.status_code == 400


def test_schema_documents_the_evidence_operations(officer_api):  # the schema is for staff
    schema = officer_api.get("/api/schema/", {"format": "json"}).json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "theft_report_evidence_export",
        "case_evidence_export",
        "evidence_public_key",
        "evidence_verify",
    } <= operations


def test_evidence_key_prints_the_public_key_to_publish(_key_file, tmp_path):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("evidence_key", stdout=out, stderr=err)
    assert out.getvalue().startswith("-----BEGIN PUBLIC KEY-----")
    assert f"created {_key_file}" in err.getvalue()
    published = tmp_path / "published.pem"
    published.write_text(out.getvalue())
    assert evidence.fingerprint(evidence.load_public_key(published.read_bytes())) == evidence.fingerprint(
        evidence.server_public_key()
    )
    call_command("evidence_key", stdout=StringIO(), stderr=err)
    assert f"using {_key_file}" in err.getvalue()
