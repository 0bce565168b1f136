"""Searches by ID number or phone are GET requests; their values never reach a log line."""

import contextlib
import io
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ebike_registry.log_masking import mask_personal

ID_NUMBER, PHONE = "130229198503151230", "13812345678"
REPO = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_access_log(tmp_path):
    """gunicorn as scripts/run.sh starts it (the masking logger class), its access log in a file."""
    port, log = free_port(), tmp_path / "access.log"
    process = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "ebike_registry.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--no-control-socket",
            "--access-logfile",
            str(log),
            "--logger-class",
            "ebike_registry.log_masking.AccessLogMasker",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=15)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url, **headers):
    """One request, one access log line: redirects are not followed."""
    opener = urllib.request.build_opener(_NoRedirects)
    with contextlib.suppress(urllib.error.HTTPError):
        opener.open(urllib.request.Request(url, headers=headers), timeout=10).close()  # noqa: S310 (http only)


def test_the_access_log_masks_id_numbers_and_phones(gunicorn_access_log):
    base, log = gunicorn_access_log
    get(f"{base}/api/v1/vehicles?id_number={ID_NUMBER}&phone={PHONE}&owner_name=%E7%8E%8B")
    get(f"{base}/search/?id_number={ID_NUMBER}", Referer=f"{base}/search/?phone={PHONE}")
    get(f"{base}/login/?next=/search/%3Fid_number%3D{ID_NUMBER}%26phone%3D{PHONE}")
    deadline = time.monotonic() + 10
    while log.read_text().count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    lines = text.splitlines()
    assert len(lines) == 3, text
    assert ID_NUMBER not in text and PHONE not in text and "%E7%8E%8B" not in text
    assert "GET /api/v1/vehicles?id_number=***&phone=***&owner_name=*** HTTP/1.1" in lines[0]
    assert "/search/?phone=***" in lines[1]  # the Referer
    assert "id_number%3D***%26phone%3D***" in lines[2]


def test_django_log_lines_are_masked():
    """runserver's request lines (django.server) and every other record go through the masking
    filter of the console handler."""
    handler = logging.getLogger("django.server").handlers[0]
    out = io.StringIO()
    previous = handler.setStream(out)
    try:
        logging.getLogger("django.server").info('"%s" %s %s', f"GET /search/?id_number={ID_NUMBER} HTTP/1.1", 200, 5)
        logging.getLogger("vehicles").warning("lookup of %s failed", PHONE)
    finally:
        handler.setStream(previous)
    text = out.getvalue()
    assert "GET /search/?id_number=*** HTTP/1.1" in text
    assert "lookup of 138****5678 failed" in text
    assert ID_NUMBER not in text and PHONE not in text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"?plate=玉A00001&id_number={ID_NUMBER}", "?plate=玉A00001&id_number=***"),
        (f"owner {ID_NUMBER[:-1]}X called", "owner 130229********123X called"),
        (f"tel {PHONE}.", "tel 138****5678."),
        ("imei 861234567890123, frame 130229198503151", "imei 861234567890123, frame 130229198503151"),
        ("?frame_number=130229198503151&id_number=", "?frame_number=130229198503151&id_number="),
    ],
)
def test_mask_personal(line, expected):
    assert mask_personal(line) == expected
