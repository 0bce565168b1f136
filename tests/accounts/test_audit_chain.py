"""The audit trail is tamper-evident (issue 16, point 4): sealed into a hash chain whose daily head is
signed with the bureau key and kept elsewhere; `verify_audit` names what was changed behind the
application's back. The tampering below is done as the owner role, which can switch the
append-only trigger off; the runtime roles cannot (tests/accounts/test_db_roles.py)."""

import base64
import datetime
import json
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.audit_chain import (
    _signed_part,
    audit_head_write,
    audit_heads_prune,
    audit_seal,
    audit_verify,
    chain_hash,
    content_hash,
    head_path,
)
from accounts.bureau_key import fingerprint, key_load, public_base64
from accounts.models import AuditEntry, AuditSeal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _heads_and_key(settings, tmp_path):
    settings.AUDIT_HEAD_DIR = tmp_path / "heads"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "bureau.pem"


def entries(count: int, **fields) -> list[AuditEntry]:
    return [
        AuditEntry.objects.create(
            action=fields.get("action", "search"),
            object_type="vehicle",
            object_id=str(1000 + n),
            query={"plate": f"玉A{n:05d}"},
            result_count=1,
            reason=f"counter enquiry {n}",
            ip="10.1.2.3",
        )
        for n in range(count)
    ]


def as_owner(sql: str, params=None, *, table: str = "accounts_auditentry") -> None:
    """SQL that the append-only trigger would refuse, run by the owner with the trigger off."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred foreign-key checks pending
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def verify() -> tuple[str, str]:
    """verify_audit's (stdout, stderr); raises CommandError when the trail fails."""
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except CommandError as error:
        raise CommandError(f"{error}\n{err.getvalue()}") from error
    return out.getvalue(), err.getvalue()


def failing() -> str:
    with pytest.raises(CommandError) as failure:
        verify()
    return str(failure.value)


def test_sealed_trail_with_its_signed_head_verifies():
    made = entries(5)
    assert audit_seal() == 5
    assert audit_seal() == 0
    path = audit_head_write()
    head = json.loads(path.read_text())
    last = AuditSeal.objects.order_by("-id").first()
    assert (head["seal_id"], head["entry_id"], head["hash"]) == (last.pk, made[-1].pk, last.chain_hash)
    out, err = verify()
    assert "The audit trail verifies: 5 sealed entries, 1 signed heads checked" in out
    assert err == ""


def test_an_entry_edited_after_sealing_is_named():
    made = entries(4)
    audit_seal()
    as_owner("UPDATE accounts_auditentry SET reason = 'nothing to see' WHERE id = %s", [made[2].pk])
    message = failing()
    assert f"ALTERED: audit entry #{made[2].pk} (search vehicle:1002" in message
    assert message.count("ALTERED") == 1
    assert "1 problem(s)" in message


def test_a_deleted_entry_is_named():
    made = entries(4)
    audit_seal()
    as_owner("DELETE FROM accounts_auditentry WHERE id = %s", [made[1].pk])
    message = failing()
    assert f"REMOVED: audit entry #{made[1].pk} (seal #" in message
    assert "ALTERED" not in message


def test_two_entries_with_swapped_content_are_both_named():
    made = entries(4)
    audit_seal()
    a, b = made[0].pk, made[3].pk
    as_owner(
        "UPDATE accounts_auditentry e SET object_id = o.object_id, query = o.query, reason = o.reason "
        "FROM accounts_auditentry o WHERE (e.id, o.id) IN ((%s, %s), (%s, %s))",
        [a, b, b, a],
    )
    message = failing()
    assert f"ALTERED: audit entry #{a} " in message
    assert f"ALTERED: audit entry #{b} " in message


def test_reordered_entries_are_named():
    """Two entries trade places in the trail (their ids swapped): both named."""
    made = entries(3)
    audit_seal()
    a, b = made[0].pk, made[1].pk
    as_owner(
        "UPDATE accounts_auditentry SET id = CASE id WHEN %s THEN -1 ELSE id END WHERE id = %s;"
        "UPDATE accounts_auditentry SET id = %s WHERE id = %s;"
        "UPDATE accounts_auditentry SET id = %s WHERE id = -1",
        [a, a, a, b, b],
    )
    message = failing()
    assert f"audit entry #{a} " in message
    assert f"audit entry #{b} " in message


def test_reordered_seals_break_the_chain_at_the_first_moved_seal():
    entries(3)
    audit_seal()
    first, second = AuditSeal.objects.order_by("id")[:2]
    as_owner(
        "UPDATE accounts_auditseal SET id = -id WHERE id IN (%s, %s);"
        "UPDATE accounts_auditseal SET id = CASE id WHEN -%s THEN %s ELSE %s END WHERE id < 0",
        [first.pk, second.pk, first.pk, second.pk, first.pk],
        table="accounts_auditseal",
    )
    assert f"CHAIN BROKEN at seal #{first.pk}" in failing()


def test_an_unsealed_tail_is_reported_and_a_late_commit_is_sealed_in_a_later_run():
    with connection.cursor() as cursor:
        # An id taken by a transaction that commits only after the next entries were sealed.
        cursor.execute("SELECT nextval(pg_get_serial_sequence('accounts_auditentry', 'id'))")
        late_id = cursor.fetchone()[0]
    sealed = entries(2)
    assert audit_seal() == 2
    AuditEntry.objects.create(id=late_id, action="view", object_type="vehicle", object_id="7")
    tail = entries(2)
    out, _ = verify()
    assert f"Unsealed tail: 3 audit entries (#{late_id} to #{tail[-1].pk}" in out
    assert audit_seal() == 3
    order = list(AuditSeal.objects.order_by("id").values_list("entry_id", flat=True))
    assert order == [sealed[0].pk, sealed[1].pk, late_id, tail[0].pk, tail[1].pk]
    out, _ = verify()
    assert "Unsealed" not in out


def test_an_entry_inserted_with_an_old_date_is_never_sealed_and_is_named():
    entries(2)
    audit_seal()
    backdated = entries(1)[0]
    as_owner("UPDATE accounts_auditentry SET at = now() - interval '3 days' WHERE id = %s", [backdated.pk])
    assert audit_seal() == 0
    assert f"NOT SEALED: audit entry #{backdated.pk} is older than 1 day" in failing()


def test_a_forged_head_is_detected():
    entries(3)
    audit_seal()
    path = audit_head_write()
    head = json.loads(path.read_text())
    head["hash"] = "f" * 64  # content changed, bureau signature kept
    path.write_text(json.dumps(head))
    assert "HEAD FORGED" in failing()

    # Signed with a key of the forger's own: not the bureau's.
    forger = Ed25519PrivateKey.generate()
    head.pop("signature")
    head["signature"] = base64.b64encode(forger.sign(_signed_part(head))).decode()
    head["public_key"] = public_base64(forger.public_key())
    path.write_text(json.dumps(head))
    message = failing()
    assert f"UNKNOWN KEY: head of {timezone.localdate()}" in message
    assert f"signed with the key {fingerprint(forger.public_key())}, which is neither the bureau key" in message


def test_a_chain_recomputed_after_an_edit_is_caught_by_the_signed_head():
    """Whoever can rewrite the database can edit an entry and recompute every seal after it; the
    head signed before (kept on another host) still names the old hash."""
    made = entries(3)
    audit_seal()
    audit_head_write()
    as_owner("UPDATE accounts_auditentry SET reason = 'rewritten' WHERE id = %s", [made[0].pk])
    seals = list(AuditSeal.objects.order_by("id"))
    as_owner("DELETE FROM accounts_auditseal", table="accounts_auditseal")
    previous = "0" * 64
    for seal in seals:
        row = AuditEntry.objects.filter(pk=seal.entry_id).values(*seal.fields).get()
        seal.previous_hash, seal.content_hash = previous, content_hash(row, seal.fields)
        seal.chain_hash = previous = chain_hash(previous, seal.entry_id, seal.content_hash)
    AuditSeal.objects.bulk_create(seals)
    message = failing()
    assert "CHAIN REWRITTEN" in message
    assert "ALTERED" not in message  # the rows agree with the recomputed seals: only the head knows


def test_heads_are_kept_six_months_whatever_the_setting(settings):
    settings.AUDIT_HEAD_RETENTION_DAYS = 30
    entries(1)
    audit_seal()
    today = timezone.localdate()
    kept, pruned = head_path(today - datetime.timedelta(days=150)), head_path(today - datetime.timedelta(days=200))
    audit_head_write()
    for path in (kept, pruned):
        path.write_text("{}")
    assert audit_heads_prune(today=today) == [pruned]
    assert kept.exists()


def test_the_verification_reads_every_head_it_finds(settings):
    entries(2)
    audit_seal()
    audit_head_write(now=timezone.now() - datetime.timedelta(days=1))
    entries(1)
    audit_seal()
    audit_head_write()
    report = audit_verify()
    assert report.ok, report.problems
    assert (report.seals, report.heads) == (3, 2)


def test_the_beat_task_seals_and_writes_todays_head():
    from accounts.tasks import seal_audit_trail

    entries(2)
    assert seal_audit_trail() == 2
    assert head_path(timezone.localdate()).exists()
    assert audit_verify().ok


# --- rotating the bureau key -----------------------------------------------------------------------


def test_heads_signed_before_a_key_rotation_verify_while_the_former_key_is_listed(settings, tmp_path):
    entries(2)
    audit_seal()
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    old_head = audit_head_write(now=timezone.now() - datetime.timedelta(days=1))
    former_file = settings.AUDIT_SIGNING_KEY_FILE
    former = key_load(former_file).public_key()
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "bureau-new.pem"  # rotated: a new key
    entries(1)
    audit_seal()
    new_head = json.loads(audit_head_write().read_text())
    assert new_head["public_key"] == public_base64(key_load(settings.AUDIT_SIGNING_KEY_FILE).public_key())

    # Without the former key listed, yesterday's head cannot be told from a forged one; today's is fine.
    message = failing()
    assert message.count("UNKNOWN KEY") == 1 and "1 problem(s)" in message
    assert f"UNKNOWN KEY: head of {yesterday} ({old_head}) is signed with the key {fingerprint(former)}" in message
    assert "nor a former one listed in AUDIT_SIGNING_KEY_FALLBACKS" in message

    # Listed by its public key, as the head records it, or by its key file: both heads verify.
    for listed in (public_base64(former), str(former_file)):
        settings.AUDIT_SIGNING_KEY_FALLBACKS = [listed]
        out, err = verify()
        assert "3 sealed entries, 2 signed heads checked" in out and err == ""
        assert f"1 head ({yesterday} to {yesterday}) signed with the former key {fingerprint(former)}" in out

    # A fallback verifies only what its key signed: yesterday's head altered is still forged.
    head = json.loads(old_head.read_text())
    head["hash"] = "f" * 64
    old_head.write_text(json.dumps(head))
    assert f"HEAD FORGED: head of {yesterday} ({old_head}): the signature does not match" in failing()


def test_a_fallback_key_only_verifies_and_an_unreadable_one_is_named(settings, tmp_path):
    entries(1)
    audit_seal()
    former = Ed25519PrivateKey.generate().public_key()
    settings.AUDIT_SIGNING_KEY_FALLBACKS = [public_base64(former), str(tmp_path / "missing.pem")]
    head = json.loads(audit_head_write().read_text())
    assert head["public_key"] == public_base64(key_load(settings.AUDIT_SIGNING_KEY_FILE).public_key())
    message = failing()
    assert "FALLBACK KEY UNREADABLE: AUDIT_SIGNING_KEY_FALLBACKS entry 2: neither an Ed25519 public key" in message
    assert "1 problem(s)" in message  # the head itself, signed with the current key, verifies
