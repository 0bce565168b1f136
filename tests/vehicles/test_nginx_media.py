"""The deployment's nginx configuration (deploy/nginx/ebike-registry.conf), run for real.

Debian's nginx (scripts/setup.sh installs nginx-light) starts in the foreground on a free port with
the file's deployment paths and ports replaced by the test's, in front of pytest-django's live server
with MEDIA_ACCEL_REDIRECT on: a photo reaches a user the policy allows only through /photos/{id}/
(the application answers with X-Accel-Redirect, nginx sends the file from its `internal` location);
the internal location and /media/ answer 404 to a request from outside.

Without nginx the tests are skipped, except in CI, where they fail: setup installs it there.
"""

import http.client
import io
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from accounts.models import AuditEntry, User
from tests import factories
from tests.tracking.gateway_harness import free_port
from vehicles.models import VehiclePhoto
from vehicles.services.photos import photo_add
from vehicles.services.registration import vehicle_register

# The live server commits what the test creates; serialized_rollback brings the reference data of the
# migrations (stations, roles) back for the tests after these.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CONFIG = Path(django_settings.BASE_DIR) / "deploy" / "nginx" / "ebike-registry.conf"
INTERNAL = "/protected-media/"
# Set by the usual CI services (GitHub Actions, GitLab CI, Buildkite, Azure Pipelines, ...).
IN_CI = any(os.environ.get(name) for name in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "TF_BUILD"))


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        message = "nginx is missing: scripts/setup.sh installs it (apt package nginx-light)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def site_config(*, port: int, upstream: int, static: Path, media: Path, logs: Path) -> str:
    """The shipped file with the test's ports and paths in place of the deployment's: each is
    written once there, so a changed file fails here instead of being tested half-replaced."""
    text = CONFIG.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "/srv/ebike-registry/staticfiles/": f"{static}/",
        "/srv/ebike-registry/media/": f"{media}/",
        "/var/log/nginx/ebike-registry.access.log": str(logs / "access.log"),
        "/var/log/nginx/ebike-registry.error.log": str(logs / "error.log"),
    }
    for deployed, here in replacements.items():
        assert text.count(deployed) == 1, f"{CONFIG} should name {deployed!r} once"
        text = text.replace(deployed, here)
    return text


def main_config(*, site: Path, tmp: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf gives a site, with every file of this instance in tmp."""
    user = "user root;" if os.geteuid() == 0 else ""  # workers that read the test's private temp dirs
    return f"""
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/main-error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    access_log {tmp}/main-access.log;
    include {site};
}}
"""


@dataclass
class Front:
    port: int
    logs: Path
    static: Path

    def get(self, path: str, *, cookie: str = "", headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        all_headers = {**(headers or {}), **({"Cookie": cookie} if cookie else {})}
        connection.request("GET", path, headers=all_headers)
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        connection.close()
        return response


@pytest.fixture
def front(live_server, settings, tmp_path) -> Iterator[Front]:
    """nginx with the shipped configuration in front of the live server, MEDIA_ACCEL_REDIRECT on
    and the application told of the one proxy (TRUSTED_PROXY_COUNT=1)."""
    binary = nginx_binary()
    media, static, logs = tmp_path / "media", tmp_path / "static", tmp_path / "logs"
    for folder in (media, static, logs):
        folder.mkdir()
    settings.MEDIA_ROOT = media
    settings.MEDIA_ACCEL_REDIRECT = INTERNAL
    settings.TRUSTED_PROXY_COUNT = 1
    port = free_port()
    site = tmp_path / "ebike-registry.conf"
    site.write_text(
        site_config(port=port, upstream=int(live_server.url.rsplit(":", 1)[1]), static=static, media=media, logs=logs)
    )
    main = tmp_path / "nginx.conf"
    main.write_text(main_config(site=site, tmp=tmp_path))
    command = [binary, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "main-error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)  # noqa: S603
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "nginx exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen within 10 s"
                time.sleep(0.05)
        yield Front(port=port, logs=logs, static=static)
    finally:
        process.terminate()  # SIGTERM: a fast shutdown of master and worker
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, format="PNG")
    return out.getvalue()


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"


@pytest.fixture
def photo(front) -> VehiclePhoto:
    """A photo of a bike registered at the counter, stored by the upload service under MEDIA_ROOT."""
    clerk = factories.user("clerk")
    vehicle = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle
    upload = SimpleUploadedFile("IMG_0001.PNG", png((200, 30, 30)), content_type="image/png")
    return photo_add(user=clerk, vehicle_id=vehicle.pk, kind="bike", upload=upload)


def test_a_clerk_gets_the_photo_through_nginx_which_sends_the_file_itself(front, photo):
    clerk = factories.user("clerk")
    stored = Path(photo.image.path).read_bytes()

    response = front.get(
        f"/photos/{photo.pk}/", cookie=session_cookie(clerk), headers={"X-Forwarded-For": "203.0.113.9"}
    )

    assert response.status == 200
    assert response.body == stored  # type: ignore[attr-defined]
    assert response.getheader("Content-Type") == "image/png"
    assert response.getheader("X-Accel-Redirect") is None  # consumed by nginx, not shown to the client
    assert response.getheader("Cache-Control") == "private, no-store"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    # The look is audited with the address nginx saw, not the one the client wrote in its header.
    entry = AuditEntry.objects.get(action="photo.view", user=clerk)
    assert (entry.result_count, entry.ip) == (1, "127.0.0.1")


def test_anonymous_and_another_owner_are_refused_without_the_file(front, photo):
    stored = Path(photo.image.path).read_bytes()
    anonymous = front.get(f"/photos/{photo.pk}/")
    assert anonymous.status == 302
    assert anonymous.getheader("Location", "").startswith("/login/")
    not_the_owner = factories.user("owner", station_code=None)
    refused = front.get(f"/photos/{photo.pk}/", cookie=session_cookie(not_the_owner))
    assert refused.status == 403
    for response in (anonymous, refused):
        assert stored not in response.body  # type: ignore[attr-defined]


def test_the_internal_location_and_media_are_404_from_outside(front, photo):
    name = photo.image.name
    stored = (Path(django_settings.MEDIA_ROOT) / name).read_bytes()
    clerk_cookie = session_cookie(factories.user("clerk"))
    for path in (f"{INTERNAL}{name}", f"/media/{name}", "/media/", INTERNAL):
        response = front.get(path, cookie=clerk_cookie)
        assert response.status == 404, path
        assert stored not in response.body  # type: ignore[attr-defined]


def test_static_files_are_served_by_nginx(front):
    (front.static / "css").mkdir()
    (front.static / "css" / "probe.css").write_text("body { color: #123456; }\n")
    response = front.get("/static/css/probe.css")
    assert response.status == 200
    assert response.body == b"body { color: #123456; }\n"  # type: ignore[attr-defined]
    assert response.getheader("Content-Type") == "text/css"


def test_a_body_over_the_photo_limit_is_refused_by_nginx_in_the_apis_shape(front):
    connection = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    connection.putrequest("POST", "/api/v1/vehicles/1/photos")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(100 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert "larger than" in response.read().decode()
    connection.close()


def _logged(path: Path, timeout_s: float = 5.0) -> str:
    """The access log once nginx has written its line: it logs a request after sending the answer,
    so a client that reads the file at once may find it still empty."""
    deadline = time.monotonic() + timeout_s
    while not (text := path.read_text() if path.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.02)
    return text


def test_the_access_log_keeps_no_query_string(front, photo):
    clerk = factories.user("clerk")
    id_number = photo.vehicle.owner.id_number
    response = front.get(f"/api/v1/vehicles?id_number={id_number}&reason=check", cookie=session_cookie(clerk))
    assert response.status == 200
    log = _logged(front.logs / "access.log")
    assert "GET /api/v1/vehicles HTTP/1.1" in log
    assert id_number not in log
