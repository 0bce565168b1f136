"""Secret keys and HTTPS settings: no server on a public key, certificates on their own key, and
`manage.py check --deploy` clean with production settings (each in a fresh process, as started)."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import signing

from ebike_registry.keys import DEV_CERTIFICATE_KEY, DEV_SECRET_KEY
from tests import factories
from vehicles.certificates import SALT, certificate_token
from vehicles.services.registration import vehicle_register

ROOT = Path(settings.BASE_DIR)
COMPOSE_KEY = "compose-insecure-dev-key-change-me"  # docker-compose.yml's default


def run(code_or_args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        # (the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is no setting of a deployment either)
        if not key.startswith(("SECRET_KEY", "CERTIFICATE_SIGNING_KEY", "DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC"))
    }
    environment.update(env)
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, *code_or_args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def start_server(**env: str) -> subprocess.CompletedProcess:
    """What gunicorn does first: import the WSGI application."""
    return run(["-c", "import ebike_registry.wsgi"], **env)


def real_keys() -> dict[str, str]:
    return {"SECRET_KEY": secrets.token_urlsafe(48), "CERTIFICATE_SIGNING_KEY": secrets.token_urlsafe(48)}


@pytest.mark.parametrize("public", [DEV_SECRET_KEY, COMPOSE_KEY])
def test_the_server_refuses_to_start_on_a_public_secret_key(public):
    result = start_server(DEBUG="false", SECRET_KEY=public, CERTIFICATE_SIGNING_KEY=secrets.token_urlsafe(48))
    assert result.returncode != 0
    assert "ImproperlyConfigured: Refusing to start: SECRET_KEY is a public key" in result.stderr
    assert "scripts/setup.sh" in result.stderr


def test_the_server_refuses_the_public_certificate_key_too():
    result = start_server(
        DEBUG="false", SECRET_KEY=secrets.token_urlsafe(48), CERTIFICATE_SIGNING_KEY=DEV_CERTIFICATE_KEY
    )
    assert result.returncode != 0
    assert "CERTIFICATE_SIGNING_KEY is a public key" in result.stderr


def test_debug_allows_the_development_keys_and_real_keys_start():
    assert start_server(DEBUG="true", SECRET_KEY=DEV_SECRET_KEY).returncode == 0
    result = start_server(DEBUG="false", **real_keys())
    assert result.returncode == 0, result.stderr[-2000:]


def test_keys_are_read_from_files(tmp_path):
    secret, certificate = tmp_path / "secret", tmp_path / "certificate"
    secret.write_text(secrets.token_urlsafe(48) + "\n")
    certificate.write_text(secrets.token_urlsafe(48))
    code = "from django.conf import settings; print(settings.SECRET_KEY); print(settings.CERTIFICATE_SIGNING_KEY)"
    result = run(
        ["-c", f"import django; django.setup(); {code}"],
        DJANGO_SETTINGS_MODULE="ebike_registry.settings",
        SECRET_KEY_FILE=str(secret),
        CERTIFICATE_SIGNING_KEY_FILE=str(certificate),
    )
    assert result.stdout.split() == [secret.read_text().strip(), certificate.read_text()]


def test_check_deploy_is_clean_with_https_on():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="false",
        HTTPS="true",
        ALLOWED_HOSTS="ebike.example.gov.cn",
        **real_keys(),
    )
    # Only the API schema's enum naming hints of drf-spectacular may remain (not security settings).
    ids = set(re.findall(r"\(([\w.]+\.[EW]\d+)\)", result.stdout + result.stderr))
    assert {i for i in ids if not i.startswith("drf_spectacular.")} == set(), result.stdout + result.stderr


def test_without_https_check_deploy_names_what_the_switch_turns_on():
    result = run(["manage.py", "check", "--deploy"], DEBUG="false", ALLOWED_HOSTS="ebike.example.gov.cn", **real_keys())
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr + result.stdout


def test_check_deploy_reports_a_public_key():
    result = run(
        ["manage.py", "check", "--deploy"],
        DEBUG="false",
        HTTPS="true",
        SECRET_KEY=COMPOSE_KEY,
        CERTIFICATE_SIGNING_KEY=secrets.token_urlsafe(48),
    )
    assert result.returncode != 0
    assert "ebike.E001" in result.stderr and "SECRET_KEY is a public key" in result.stderr


def test_https_settings_follow_the_one_switch():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    on = run(["-c", code], DJANGO_SETTINGS_MODULE="ebike_registry.settings", HTTPS="true")
    off = run(["-c", code], DJANGO_SETTINGS_MODULE="ebike_registry.settings")
    assert on.stdout.strip() == "True True True True ('HTTP_X_FORWARDED_PROTO', 'https')"
    assert off.stdout.strip() == "False False False False None"


def test_setup_writes_the_key_files_once_with_mode_0600(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("setup.sh", "lib.sh"):
        (scripts / name).write_text((ROOT / "scripts" / name).read_text())
    subprocess.run(["bash", str(scripts / "setup.sh"), "keys"], check=True, capture_output=True)  # noqa: S603, S607
    keys = tmp_path / "var" / "keys"
    first = {name: (keys / name).read_text() for name in ("secret-key", "certificate-key")}
    for name, value in first.items():
        assert len(value.strip()) >= 60
        assert (keys / name).stat().st_mode & 0o777 == 0o600
    assert first["secret-key"] != first["certificate-key"]
    subprocess.run(["bash", str(scripts / "setup.sh"), "keys"], check=True, capture_output=True)  # noqa: S603, S607
    assert {name: (keys / name).read_text() for name in first} == first  # never replaced


# --- Certificate QR tokens -----------------------------------------------------------------------


@pytest.fixture
def registration(db):
    clerk = factories.user("clerk")
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=False
    )


def test_a_token_forged_with_the_public_default_key_is_refused(client, registration, settings):
    settings.SECRET_KEY = DEV_SECRET_KEY  # a server that still ran on the old public default
    payload = {"v": registration.vehicle.pk, "p": registration.plate.number}
    for public in (DEV_SECRET_KEY, DEV_CERTIFICATE_KEY, COMPOSE_KEY):
        forged = signing.dumps(payload, key=public, salt=SALT, compress=True)
        assert client.get(f"/verify/{forged}/").status_code == 404


def test_rotating_the_secret_key_keeps_printed_certificates_valid(client, registration, settings):
    token = certificate_token(vehicle_id=registration.vehicle.pk, plate_number=registration.plate.number)
    settings.SECRET_KEY = secrets.token_urlsafe(48)
    assert client.get(f"/verify/{token}/").status_code == 200


def test_a_rotated_certificate_key_stays_valid_while_it_is_a_fallback(client, registration, settings):
    token = certificate_token(vehicle_id=registration.vehicle.pk, plate_number=registration.plate.number)
    old = settings.CERTIFICATE_SIGNING_KEY
    settings.CERTIFICATE_SIGNING_KEY = secrets.token_urlsafe(48)
    settings.CERTIFICATE_SIGNING_KEY_FALLBACKS = [old]
    assert client.get(f"/verify/{token}/").status_code == 200
    settings.CERTIFICATE_SIGNING_KEY_FALLBACKS = []
    assert client.get(f"/verify/{token}/").status_code == 404
