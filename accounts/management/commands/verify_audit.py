"""Check the audit trail against its hash chain and the signed daily heads (accounts.audit_chain)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.audit_chain import audit_verify


class Command(BaseCommand):
    help = (
        "Recompute the audit trail's hash chain: names every altered, removed or reordered sealed entry, "
        "reports the unsealed tail and checks the signed chain heads in AUDIT_HEAD_DIR. Exits non-zero "
        "when anything is wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("--head-dir", type=Path, help="where the signed heads are (default: AUDIT_HEAD_DIR)")

    def handle(self, *args, **options):
        report = audit_verify(directory=options["head_dir"])
        for note in report.notes:
            self.stdout.write(note)
        for problem in report.problems:
            self.stderr.write(self.style.ERROR(problem))
        summary = f"{report.seals} sealed entries, {report.heads} signed heads checked"
        if not report.ok:
            raise CommandError(f"The audit trail FAILED verification: {len(report.problems)} problem(s); {summary}.")
        self.stdout.write(self.style.SUCCESS(f"The audit trail verifies: {summary}; the chain is unbroken."))
