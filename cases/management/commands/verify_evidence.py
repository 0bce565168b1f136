"""Check an evidence bundle: exit 0 when it is intact and signed by the bureau's key, 1 with every
altered, added or removed part named when it is not, 2 when the input cannot be read.

The trusted key is --public-key (the PEM the bureau publishes, or one printed by
`manage.py evidence_key`); without it, the server's own key when this runs on the server; failing
both, only the key inside the bundle, which is said in the output.

The output is in English throughout (`no_translations`): the command's own lines are, and the
problems it names, which the web pages show in the user's language, must not read half-Chinese.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, no_translations

from cases.evidence.services import bundle_verify, load_public_key, server_public_key


class Command(BaseCommand):
    help = "Verify a signed evidence bundle (JSON): exit 0 if intact, non-zero naming what was altered."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("bundle", help="the bundle's JSON file, or - for stdin")
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            help="trusted Ed25519 public key (PEM or base64); may be given more than once",
        )

    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        source = options["bundle"]
        try:
            raw = self.stdin_bytes() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read the bundle {source}: {exc.strerror}", returncode=2) from exc
        trusted = []
        for key_file in options["public_key"]:
            try:
                trusted.append(load_public_key(Path(key_file).read_bytes()))
            except OSError as exc:
                raise CommandError(f"Cannot read the public key {key_file}: {exc.strerror}", returncode=2) from exc
            except ValueError as exc:
                raise CommandError(f"{key_file} is not an Ed25519 public key: {exc}", returncode=2) from exc
        if not trusted and Path(settings.EVIDENCE_SIGNING_KEY_FILE).exists():
            trusted.append(server_public_key())
        result = bundle_verify(raw, trusted=trusted or None)
        for note in result.notes:
            self.stderr.write(f"note: {note}")
        if not result.valid:
            for problem in result.problems:
                self.stderr.write(f"ALTERED: {problem}")
            raise CommandError(
                f"The evidence bundle {source} is NOT intact ({len(result.problems)} problem(s)).", returncode=1
            )
        self.stdout.write(
            f"OK: {source} is intact: {result.subject}, {result.sections} sections match the manifest, "
            f"signed with {result.fingerprint}."
        )

    def stdin_bytes(self) -> bytes:
        import sys

        return sys.stdin.buffer.read()
