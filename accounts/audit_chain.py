"""The audit trail as a hash chain: sealing committed entries, signing each day's head, verifying.

`audit_seal` (beat, every minute, on the maintenance worker) appends one AuditSeal per committed
entry not yet sealed, in id order, chained to the previous seal; then signs the chain head with the
bureau key into AUDIT_HEAD_DIR (another disk or host: whoever can rewrite the database cannot
re-sign a head). `audit_verify` recomputes every seal, entry and head and names what was altered,
removed, reordered or never sealed; heads signed by a former key verify while it is listed in
AUDIT_SIGNING_KEY_FALLBACKS. Why each step: docs/architecture.md#audit.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from accounts.bureau_key import fingerprint, key_load, public_base64, public_key_load
from accounts.models import AuditEntry, AuditSeal
from ebike_registry.canonical import canonical_json

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
SEAL_BATCH = 5_000
SEAL_LOOKBACK = datetime.timedelta(days=1)
HEAD_RETENTION_MIN_DAYS = 183
HEAD_CHAIN_NAME = "ebike-registry audit trail"
HEAD_FILE_RE = re.compile(r"^audit-head-(\d{4}-\d{2}-\d{2})\.json$")
# pg_advisory_xact_lock key: one sealing transaction at a time (a second one waits, then continues
# the chain the first one left).
SEAL_LOCK = 0x6562_6B61_7564_6974  # "ebkaudit"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def content_hash(entry: dict[str, Any], fields: list[str]) -> str:
    """SHA-256 of the entry's `fields` (column names, e.g. user_id) as canonical JSON."""
    return hashlib.sha256(canonical_json({name: _plain(entry.get(name)) for name in fields})).hexdigest()


def chain_hash(previous: str, entry_id: int, content: str) -> str:
    return hashlib.sha256(f"{previous}:{entry_id}:{content}".encode()).hexdigest()


def entry_fields() -> list[str]:
    """The audit entry's columns a new seal covers: all of them."""
    return [f.attname for f in AuditEntry._meta.concrete_fields]


# --- sealing -------------------------------------------------------------------------------------


def audit_seal(*, now: datetime.datetime | None = None) -> int:
    """Seal the committed, unsealed entries of the last SEAL_LOOKBACK (all of them, the first
    time); the number sealed."""
    now = now or timezone.now()
    fields = entry_fields()
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK])
            head = AuditSeal.objects.order_by("-id").values("chain_hash").first()
            previous = head["chain_hash"] if head else GENESIS
            candidates = AuditEntry.objects.filter(~Exists(AuditSeal.objects.filter(entry_id=OuterRef("pk"))))
            if head:
                candidates = candidates.filter(at__gte=now - SEAL_LOOKBACK)
            rows = list(candidates.order_by("id").values(*fields)[:SEAL_BATCH])
            seals = []
            for row in rows:
                content = content_hash(row, fields)
                link = chain_hash(previous, row["id"], content)
                seals.append(
                    AuditSeal(
                        entry_id=row["id"],
                        fields=fields,
                        content_hash=content,
                        previous_hash=previous,
                        chain_hash=link,
                        sealed_at=now,
                    )
                )
                previous = link
            AuditSeal.objects.bulk_create(seals)
        total += len(rows)
        if len(rows) < SEAL_BATCH:
            return total


# --- signed daily heads --------------------------------------------------------------------------


def head_dir() -> Path:
    return Path(settings.AUDIT_HEAD_DIR)


def head_path(day: datetime.date, directory: Path | None = None) -> Path:
    return (directory or head_dir()) / f"audit-head-{day.isoformat()}.json"


def _signed_part(head: dict[str, Any]) -> bytes:
    return canonical_json({key: value for key, value in head.items() if key not in ("signature", "public_key")})


def audit_head_write(*, now: datetime.datetime | None = None) -> Path | None:
    """Sign the chain's head and write it as today's head file (atomically); None: nothing sealed."""
    now = now or timezone.now()
    seal = AuditSeal.objects.order_by("-id").first()
    if seal is None:
        return None
    day = timezone.localdate(now)
    key = key_load(Path(settings.AUDIT_SIGNING_KEY_FILE))
    head: dict[str, Any] = {
        "chain": HEAD_CHAIN_NAME,
        "day": day.isoformat(),
        "seal_id": seal.pk,
        "entry_id": seal.entry_id,
        "hash": seal.chain_hash,
        "written_at": _plain(now),
    }
    head["signature"] = base64.b64encode(key.sign(_signed_part(head))).decode()
    head["public_key"] = public_base64(key.public_key())
    path = head_path(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-head-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(head, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def audit_heads_prune(*, today: datetime.date | None = None) -> list[Path]:
    """Delete head files older than AUDIT_HEAD_RETENTION_DAYS (never younger than six months)."""
    today = today or timezone.localdate()
    keep_days = max(settings.AUDIT_HEAD_RETENTION_DAYS, HEAD_RETENTION_MIN_DAYS)
    removed = []
    for day, path in _head_files(head_dir()):
        if (today - day).days > keep_days:
            path.unlink()
            removed.append(path)
    return removed


def _head_files(directory: Path) -> Iterator[tuple[datetime.date, Path]]:
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        match = HEAD_FILE_RE.match(path.name)
        if match:
            yield datetime.date.fromisoformat(match.group(1)), path


# --- verification --------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seals: int = 0
    heads: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _describe(entry: dict[str, Any] | None, seal: AuditSeal) -> str:
    when = f", sealed {timezone.localtime(seal.sealed_at):%Y-%m-%d %H:%M}"
    if entry is None:
        return f"audit entry #{seal.entry_id} (seal #{seal.pk}{when})"
    return (
        f"audit entry #{seal.entry_id} ({entry.get('action')} {entry.get('object_type')}:{entry.get('object_id')}, "
        f"seal #{seal.pk}{when})"
    )


def _verify_chain(report: VerifyReport, chunk: int, wanted: set[int | None]) -> dict[int, str]:
    """Each seal's link and hash, and each sealed entry's content; the chain hash of the `wanted`
    seals (those the heads name)."""
    previous = GENESIS
    hashes: dict[int, str] = {}
    batch: list[AuditSeal] = []

    def check_entries() -> None:
        needed = {name for seal in batch for name in seal.fields} | {"id", "action", "object_type", "object_id"}
        existing = [name for name in needed if name in {f.attname for f in AuditEntry._meta.concrete_fields}]
        entries = {
            row["id"]: row for row in AuditEntry.objects.filter(id__in=[s.entry_id for s in batch]).values(*existing)
        }
        for seal in batch:
            entry = entries.get(seal.entry_id)
            if entry is None:
                report.problems.append(f"REMOVED: {_describe(None, seal)} no longer exists.")
            elif content_hash(entry, seal.fields) != seal.content_hash:
                report.problems.append(
                    f"ALTERED: {_describe(entry, seal)} no longer has the content it was sealed with."
                )
        batch.clear()

    for seal in AuditSeal.objects.order_by("id").iterator(chunk_size=chunk):
        report.seals += 1
        if seal.previous_hash != previous:
            report.problems.append(
                f"CHAIN BROKEN at seal #{seal.pk} (audit entry #{seal.entry_id}): it does not follow the seal "
                "before it; seals were removed, inserted or reordered."
            )
        if chain_hash(seal.previous_hash, seal.entry_id, seal.content_hash) != seal.chain_hash:
            report.problems.append(
                f"SEAL ALTERED: seal #{seal.pk} (audit entry #{seal.entry_id}) does not match its hash."
            )
        previous = seal.chain_hash
        if seal.pk in wanted:
            hashes[seal.pk] = seal.chain_hash
        batch.append(seal)
        if len(batch) >= chunk:
            check_entries()
    if batch:
        check_entries()
    return hashes


def _verify_unsealed(report: VerifyReport, now: datetime.datetime) -> None:
    unsealed = AuditEntry.objects.filter(~Exists(AuditSeal.objects.filter(entry_id=OuterRef("pk"))))
    tail = unsealed.aggregate(first=Min("id"), last=Max("id"), oldest=Min("at"))
    count = unsealed.count()
    if not count:
        return
    report.notes.append(
        f"Unsealed tail: {count} audit entr{'y' if count == 1 else 'ies'} (#{tail['first']} to #{tail['last']}, "
        f"since {timezone.localtime(tail['oldest']):%Y-%m-%d %H:%M:%S}); the seal job seals them within a minute."
    )
    stale = list(unsealed.filter(at__lt=now - SEAL_LOOKBACK).order_by("id").values_list("id", flat=True)[:20])
    if stale:
        report.problems.append(
            "NOT SEALED: audit entr"
            + ("y" if len(stale) == 1 else "ies")
            + f" #{', #'.join(map(str, stale))} {'is' if len(stale) == 1 else 'are'} older than {SEAL_LOOKBACK} and "
            "not sealed: inserted late or with a back-dated time."
        )


def fallback_key_load(entry: str) -> Ed25519PublicKey:
    """An entry of AUDIT_SIGNING_KEY_FALLBACKS: a public key in base64 (as a head records it) or a
    key file (PEM, public or private; of a private one only the public half is used)."""
    try:
        return public_key_load(entry.encode())
    except ValueError:
        pass
    try:
        return public_key_load(Path(entry).read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"neither an Ed25519 public key in base64 nor a readable key file ({error})") from error


def _key_name(public_key: Any) -> str:
    try:
        return fingerprint(Ed25519PublicKey.from_public_bytes(base64.b64decode(str(public_key), validate=True)))
    except ValueError:
        return "(missing or malformed)"


def _trusted_keys(report: VerifyReport) -> dict[str, Ed25519PublicKey] | None:
    """The keys a head may be signed with, by their base64 public key: the bureau key first, then
    the former ones of AUDIT_SIGNING_KEY_FALLBACKS. None when the bureau key cannot be read."""
    key_file = Path(settings.AUDIT_SIGNING_KEY_FILE)
    try:
        current: Ed25519PublicKey = key_load(key_file, create=False).public_key()
    except (OSError, ValueError) as error:
        report.problems.append(f"HEADS NOT CHECKED: the bureau key {key_file} cannot be read ({error}).")
        return None
    trusted = {public_base64(current): current}
    for number, entry in enumerate(settings.AUDIT_SIGNING_KEY_FALLBACKS, 1):
        try:
            former = fallback_key_load(entry)
        except ValueError as error:
            report.problems.append(f"FALLBACK KEY UNREADABLE: AUDIT_SIGNING_KEY_FALLBACKS entry {number}: {error}.")
            continue
        trusted.setdefault(public_base64(former), former)
    return trusted


def _read_heads(report: VerifyReport, directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """The head files signed with the bureau key or a former one listed as a fallback, as
    (name, head); the others reported."""
    files = list(_head_files(directory))
    if not files:
        return []
    trusted = _trusted_keys(report)
    if trusted is None:
        return []
    current = next(iter(trusted))
    by_former_key: dict[str, list[datetime.date]] = {}
    heads = []
    for day, path in files:
        report.heads += 1
        name = f"head of {day} ({path})"
        try:
            head = json.loads(path.read_text())
            signature = base64.b64decode(head["signature"], validate=True)
        except (OSError, ValueError, KeyError, TypeError) as error:
            report.problems.append(f"HEAD UNREADABLE: {name}: {error}.")
            continue
        signer = head.get("public_key")
        public_key = trusted.get(signer) if isinstance(signer, str) else None
        if public_key is None:
            report.problems.append(
                f"UNKNOWN KEY: {name} is signed with the key {_key_name(signer)}, which is neither the bureau key "
                f"{_key_name(current)} nor a former one listed in AUDIT_SIGNING_KEY_FALLBACKS: a forged head, or "
                "one signed before the key was rotated whose former public key is not listed there."
            )
            continue
        try:
            public_key.verify(signature, _signed_part(head))
        except InvalidSignature:
            report.problems.append(f"HEAD FORGED: {name}: the signature does not match its content.")
            continue
        if head.get("day") != day.isoformat():
            report.problems.append(f"HEAD MISPLACED: {name} is signed for {head.get('day')}.")
        if signer != current:
            by_former_key.setdefault(_key_name(signer), []).append(day)
        heads.append((name, head))
    for key_name, days in by_former_key.items():
        report.notes.append(
            f"{len(days)} head{'' if len(days) == 1 else 's'} ({min(days)} to {max(days)}) signed with the former "
            f"key {key_name}, listed in AUDIT_SIGNING_KEY_FALLBACKS."
        )
    return heads


def _check_heads(report: VerifyReport, heads: list[tuple[str, dict[str, Any]]], hashes: dict[int, str]) -> None:
    """Each signed head against the seal it names."""
    for name, head in heads:
        seal_id = head.get("seal_id")
        if seal_id not in hashes:
            report.problems.append(f"CHAIN CUT: the {name} names seal #{seal_id}, which no longer exists.")
        elif hashes[seal_id] != head.get("hash"):
            report.problems.append(
                f"CHAIN REWRITTEN: the {name} signed seal #{seal_id} with hash {str(head.get('hash'))[:16]}…; "
                f"the database now has {hashes[seal_id][:16]}…: the chain up to it was recomputed."
            )


def audit_verify(
    *, now: datetime.datetime | None = None, directory: Path | None = None, chunk: int = 5_000
) -> VerifyReport:
    """Check the whole chain, the unsealed tail and the signed heads; every problem named."""
    now = now or timezone.now()
    report = VerifyReport()
    directory = directory or head_dir()
    heads = _read_heads(report, directory)
    hashes = _verify_chain(report, chunk, {head.get("seal_id") for _, head in heads})
    _verify_unsealed(report, now)
    _check_heads(report, heads, hashes)
    if report.seals and not report.heads:
        report.notes.append(f"No signed chain heads in {directory} yet.")
    return report
