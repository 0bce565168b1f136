"""Create the evidence signing key if it is missing (mode 0600) and print its public half, to
publish for courts: `manage.py evidence_key > evidence-public.pem`."""

from typing import Any

from django.core.management.base import BaseCommand

from cases.evidence.services import fingerprint, public_key_pem, signing_key, signing_key_ensure


class Command(BaseCommand):
    help = "Create the evidence signing key if missing and print its public key (PEM) and fingerprint."

    def handle(self, *args: Any, **options: Any) -> None:
        path, created = signing_key_ensure()
        public = signing_key().public_key()
        self.stderr.write(f"{'created' if created else 'using'} {path}; fingerprint {fingerprint(public)}")
        self.stdout.write(public_key_pem(public), ending="")
