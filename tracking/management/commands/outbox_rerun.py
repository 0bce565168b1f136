"""`manage.py outbox_rerun --by NAME --reason TEXT [ID …] [--all] [--list]`: run dead outbox rows
again, oldest first, once the cause of their failure is fixed (tracking.derived.outbox_rerun)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.derived import outbox_dead, outbox_rerun
from tracking.models import IngestOutbox


class Command(BaseCommand):
    help = (
        "Run dead ingestion-outbox rows (derived work that kept failing) again, oldest first; "
        "each re-run is audited with who ran it and why. --list shows them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="outbox row ids (see --list or the admin)")
        parser.add_argument("--all", action="store_true", help="every dead row")
        parser.add_argument("--list", action="store_true", help="list the dead rows and their errors, change nothing")
        parser.add_argument("--by", default="", help="who runs it (recorded in the audit trail)")
        parser.add_argument("--reason", default="", help="why, e.g. the fix deployed (recorded)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["ids"]
        if options["list"]:
            for row in IngestOutbox.objects.filter(pk__in=outbox_dead(ids or None)).order_by("id"):
                error = row.last_error.splitlines()[0] if row.last_error else ""
                self.stdout.write(
                    f"{row.pk}\t{row.created_at:%Y-%m-%d %H:%M:%S}\tattempts={row.attempts}\t"
                    f"terminals={row.terminal_ids}\t{error}"
                )
            return
        if not ids and not options["all"]:
            raise CommandError("Name the rows to re-run (ids) or pass --all.")
        if not options["by"].strip() or not options["reason"].strip():
            raise CommandError("--by and --reason are required: both are recorded in the audit trail.")
        dead = outbox_dead(ids or None)
        missing = sorted(set(ids) - set(dead))
        if missing:
            self.stderr.write(f"not dead (processed, waiting or unknown), skipped: {missing}")
        failed = 0
        for outbox_id in dead:
            try:
                result = outbox_rerun(outbox_id=outbox_id, by=options["by"], reason=options["reason"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            if result is None:
                self.stderr.write(f"{outbox_id}: no longer dead, skipped")
            elif result.processed:
                self.stdout.write(f"{outbox_id}: processed")
            else:
                failed += 1
                first_line = result.error.splitlines()[0] if result.error else ""
                self.stdout.write(f"{outbox_id}: failed again, still dead: {first_line}")
        if failed:
            raise CommandError(f"{failed} of {len(dead)} rows failed again (still dead; see the admin).")
