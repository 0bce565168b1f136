"""The server's secret keys: where settings read them, and the refusal to serve on a public one.

SECRET_KEY (sessions, CSRF, password-reset links) and CERTIFICATE_SIGNING_KEY (the QR tokens of
printed registration certificates) each come from the environment (NAME, or NAME_FILE), else from
the file scripts/setup.sh writes the first time (var/keys/, mode 0600), else from a development
default. The development defaults and docker-compose.yml's default are public: the web server
refuses to start on any of them unless DEBUG is on (`keys_refuse_public`, called by wsgi.py and
asgi.py), and `manage.py check --deploy` reports them.

The certificate key is its own so that rotating SECRET_KEY never voids a printed certificate;
rotating the certificate key keeps old certificates valid while the old key is listed in
CERTIFICATE_SIGNING_KEY_FALLBACKS.
"""

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ebike_registry.env import env_str

DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-any-real-deployment"  # noqa: S105 - public, refused
DEV_CERTIFICATE_KEY = "dev-only-insecure-certificate-key-change-me"
# Keys anyone can read in this repository: the defaults above and docker-compose.yml's.
PUBLIC_KEYS = frozenset({DEV_SECRET_KEY, DEV_CERTIFICATE_KEY, "compose-insecure-dev-key-change-me"})
MIN_LENGTH = 32


def key_read(name: str, *, default_file: Path, development_default: str) -> str:
    """NAME or NAME_FILE from the environment, else the key file setup wrote, else the public default."""
    if os.environ.get(name) or os.environ.get(f"{name}_FILE"):
        return env_str(name, development_default)
    if default_file.is_file():
        key = default_file.read_text().strip()
        if key:
            return key
    return development_default


def key_fallbacks(name: str) -> list[str]:
    """Retired keys still accepted for verifying: NAME (or the file NAME_FILE), comma- or line-separated."""
    raw = env_str(name, "")
    return [key.strip() for key in raw.replace(",", "\n").splitlines() if key.strip()]


def key_problems(settings: Any) -> list[str]:
    """What is wrong with the configured keys, in words an operator can act on."""
    problems = []
    named = {
        "SECRET_KEY": [settings.SECRET_KEY],
        "CERTIFICATE_SIGNING_KEY": [settings.CERTIFICATE_SIGNING_KEY],
        "CERTIFICATE_SIGNING_KEY_FALLBACKS": list(settings.CERTIFICATE_SIGNING_KEY_FALLBACKS),
        "SECRET_KEY_FALLBACKS": list(getattr(settings, "SECRET_KEY_FALLBACKS", [])),
    }
    for name, keys in named.items():
        for key in keys:
            if key in PUBLIC_KEYS:
                problems.append(f"{name} is a public key (a default written in this repository)")
            elif len(key) < MIN_LENGTH:
                problems.append(f"{name} is shorter than {MIN_LENGTH} characters")
    if settings.CERTIFICATE_SIGNING_KEY == settings.SECRET_KEY:
        problems.append("CERTIFICATE_SIGNING_KEY is the same as SECRET_KEY (rotating one would void the other)")
    return problems


def keys_refuse_public(settings: Any) -> None:
    """Called by the web server's entry points: no serving on a public or weak key unless DEBUG."""
    if settings.DEBUG:
        return
    problems = key_problems(settings)
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start: " + "; ".join(problems) + ". Run scripts/setup.sh once (it writes random keys "
            "to var/keys/, mode 0600), or set SECRET_KEY and CERTIFICATE_SIGNING_KEY (or their *_FILE) to long "
            "random values. DEBUG=true allows the development keys on a developer's machine."
        )


@checks.register(checks.Tags.security, deploy=True)
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.conf import settings

    return [checks.Error(problem, id="ebike.E001") for problem in key_problems(settings)]


def secret_file_create(path: Path, content: bytes) -> bool:
    """Write `content` to `path` (mode 0600, its directory 0700) unless the file exists; True when
    this call created it. Safe when several processes start at once: the content goes to a private
    temporary file linked into place, and a process that finds itself second keeps the first's."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
            return True
        return False
    finally:
        os.unlink(temporary)
