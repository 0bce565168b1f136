"""Backup and point-in-time restore (issue 19, point 1), with the project's own scripts/backup.sh and
scripts/restore.sh on a throwaway cluster (tests/ops/backup_sandbox.py); the machine's own cluster is
only asked whether archiving is still off. About 40 s here.
"""

import datetime
import subprocess
from pathlib import Path

from ebike_registry.backup_status import _last_backup
from tests.ops.backup_sandbox import BackupSandbox, differences, snapshot

PSQL = "/usr/lib/postgresql/15/bin/psql"
WRITTEN_TABLES = ("vehicles_vehicle", "vehicles_registrationevent", "cases_theftreport", "tracking_lastposition")


def machine_cluster_archiving() -> tuple[str, str]:
    query = "SELECT current_setting('archive_mode') || '|' || current_setting('archive_command')"
    out = subprocess.run(  # noqa: S603
        [PSQL, "-X", "-At", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-c", query],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    mode, command = out.stdout.strip().split("|", 1)
    return mode, command


def test_a_restore_to_the_noted_time_has_exactly_what_was_written_before_it_and_the_files(settings):
    machine_before = machine_cluster_archiving()
    with BackupSandbox(host="127.0.0.54", restore_hosts=("127.0.0.55",)) as box:
        box.start_and_migrate()

        # Enabling backups configures archiving on the cluster, which needs one restart, and says so.
        first = box.backup("full")
        assert first.returncode == 3, first.stderr
        assert "restart" in first.stderr
        box.cluster.restart()
        assert box.cluster.sql("SHOW archive_mode") == "on"
        second = box.backup("full")
        assert second.returncode == 0, second.stderr
        label = next(line for line in second.stdout.splitlines() if "done:" in line).split()[2]
        assert label.endswith("F")
        archive = Path(box.env["BACKUP_REPO_PATH"]) / "files" / f"{label}.tar.enc"
        assert archive.stat().st_mode & 0o077 == 0
        assert b"a photo" not in archive.read_bytes()  # encrypted, not just packed
        # What /healthz will say, from the status file the run wrote (no passphrase needed to read it).
        settings.BACKUP_STATUS_FILE = Path(box.env["BACKUP_STATUS_FILE"])
        problems: list[str] = []
        last = _last_backup(datetime.datetime.now(datetime.UTC), problems)
        assert problems == []
        assert last["label"] == label and last["type"] == "full" and last["files_archive"] is True
        assert last["age_seconds"] < 120 and last["newest_wal_in_repository"]
        assert box.cluster.sql("SELECT archived_count > 0 FROM pg_stat_archiver") == "t"
        passphrase = (box.keys / "backup-passphrase").read_text().strip()
        assert passphrase not in settings.BACKUP_STATUS_FILE.read_text()

        written = box.write(tag="a", first=100, count=8)
        assert written == {"registrations": 8, "reports": 4, "pings": 80}
        expected = snapshot(box.cluster)
        target = box.now()
        box.write(tag="b", first=200, count=6)
        box.archive_current_wal()
        after = snapshot(box.cluster)
        # The second set really is in the live database, in every kind of table the test looks at.
        for table in WRITTEN_TABLES:
            assert after[table][0] > expected[table][0], table
        assert sum(rows for name, (rows, _) in after.items() if name.startswith("tracking_ping_")) == 140

        restored, report = box.restore(target)

        assert report["backup_set"] == label
        assert restored.host == "127.0.0.55" and restored.port != box.cluster.port
        assert restored.sql("SELECT pg_is_in_recovery()") == "f"
        assert restored.sql("SHOW archive_mode") == "off"  # a restored cluster never writes into the repository
        actual = snapshot(restored)
        assert differences(expected, actual) == []
        assert actual["vehicles_vehicle"][0] == 8
        assert actual["cases_theftreport"][0] == 4
        assert sum(rows for name, (rows, _) in actual.items() if name.startswith("tracking_ping_")) == 80
        files = Path(report["files"])
        assert (
            files / str(box.media).lstrip("/") / "photos" / "bike-1.jpg"
        ).read_bytes() == b"\xff\xd8 a photo \xff\xd9"
        assert (files / str(box.keys).lstrip("/") / "evidence-ed25519.pem").exists()
        assert not (files / str(box.keys).lstrip("/") / "backup-passphrase").exists()

        # Restoring never goes over a directory in use.
        refused = subprocess.run(
            ["/bin/bash", "scripts/restore.sh"],
            env={**box.env, "TARGET_TIME": target, "RESTORE_PATH": str(box.cluster.data)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode != 0 and "live cluster" in refused.stderr
        assert box.cluster.sql("SELECT count(*) FROM vehicles_vehicle", "app") == "14"
    assert machine_cluster_archiving() == machine_before
