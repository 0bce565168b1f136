"""The last successful backup and WAL archive, for /healthz and the operators (README "Operations").

Two sources, neither needing the repository's passphrase:
- the status file each `make backup` writes (BACKUP_STATUS_FILE: `pgbackrest info --output=json`
  with a `files_archive` flag per backup), for the newest backup and the newest WAL in the repository;
- `pg_stat_archiver` of the database this process is connected to, for the archive_command's last
  success and last failure, live.

`backup_status()` is cached for CACHE_SECONDS: /healthz may be polled every few seconds.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

CACHE_KEY = "ops:backup-status"
CACHE_SECONDS = 30


def backup_status(*, use_cache: bool = True) -> dict[str, Any]:
    """{"enabled", "ok", "problems", "backup": {...} | None, "archive": {...}}; never raises."""
    if use_cache:
        cached = cache.get(CACHE_KEY)
        if cached is not None:
            return cached
    now = datetime.datetime.now(datetime.UTC)
    problems: list[str] = []
    backup = _last_backup(now, problems)
    archive = _archiver(problems)
    enabled = settings.BACKUP_ENABLED
    if not enabled:
        problems = []  # not an alarm where backups are deliberately off (a development machine)
    status = {"enabled": enabled, "ok": not problems, "problems": problems, "backup": backup, "archive": archive}
    cache.set(CACHE_KEY, status, CACHE_SECONDS)
    return status


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()


def _last_backup(now: datetime.datetime, problems: list[str]) -> dict[str, Any] | None:
    path = settings.BACKUP_STATUS_FILE
    try:
        written = json.loads(path.read_text())
        stanzas = written["stanzas"]
    except FileNotFoundError:
        problems.append(f"no backup yet ({path} missing: run make backup)")
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"backup status file {path} unreadable: {exc}")
        return None
    backups = [b for stanza in stanzas for b in stanza.get("backup", []) if not b.get("error")]
    if not backups:
        problems.append("pgBackRest reports no successful backup")
        return None
    newest = max(backups, key=lambda b: b["timestamp"]["stop"])
    age = now.timestamp() - newest["timestamp"]["stop"]
    archives = [a for stanza in stanzas for a in stanza.get("archive", [])]
    result = {
        "label": newest["label"],
        "type": newest["type"],
        "finished_at": _iso(newest["timestamp"]["stop"]),
        "age_seconds": round(age),
        "size_bytes": newest.get("info", {}).get("size"),
        "repository_bytes": newest.get("info", {}).get("repository", {}).get("delta"),
        "files_archive": newest.get("files_archive", False),
        "backups_kept": len(backups),
        "newest_wal_in_repository": max((a.get("max") or "" for a in archives), default="") or None,
        "status_written_at": _iso(written.get("written_at")),
    }
    if age > settings.BACKUP_MAX_AGE_HOURS * 3600:
        limit = settings.BACKUP_MAX_AGE_HOURS
        problems.append(f"newest backup {newest['label']} is {age / 3600:.1f} h old (limit {limit} h)")
    if not result["files_archive"]:
        problems.append(f"backup {newest['label']} has no files archive (photos, scans, keys)")
    return result


def _archiver(problems: list[str]) -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('archive_mode'), archived_count, last_archived_wal, last_archived_time,"
                " failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver"
            )
            mode, archived, last_wal, last_time, failed, failed_wal, failed_time = cursor.fetchone()
    except Exception as exc:  # health reporting must not raise
        problems.append(f"archiver state unknown: {exc}")
        return {"mode": None}
    archive = {
        "mode": mode,
        "archived_count": archived,
        "last_archived_wal": last_wal,
        "last_archived_at": last_time.isoformat() if last_time else None,
        "failed_count": failed,
        "last_failed_wal": failed_wal,
        "last_failed_at": failed_time.isoformat() if failed_time else None,
    }
    if mode == "off":
        problems.append("archive_mode is off: no point-in-time recovery (make backup configures it)")
    elif failed_time and (last_time is None or failed_time > last_time):
        problems.append(f"WAL archiving is failing (last failure {failed_wal} at {failed_time.isoformat()})")
    return archive
