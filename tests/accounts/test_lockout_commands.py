"""Unlocking from the command line is audited: django-axes' axes_reset, axes_reset_ip,
axes_reset_username and axes_reset_ip_username are replaced (accounts.lockout_commands) by commands
that need `--by NAME` and write one `security.unlock` row per lockout lifted."""

import datetime
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # as set by factories.user


@pytest.fixture(autouse=True)
def _lockout_settings(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = datetime.timedelta(minutes=15)


def locked(username: str, ip: str) -> AccessAttempt:
    return AccessAttempt.objects.create(
        username=username, ip_address=ip, failures_since_start=5, get_data="", post_data="", user_agent="test"
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def unlocks() -> list[dict]:
    return list(AuditEntry.objects.filter(action="security.unlock").order_by("pk").values_list("query", flat=True))


def test_a_locked_out_account_signs_in_again_after_axes_reset_username_and_the_unlock_is_audited():
    clerk = factories.user("clerk")
    client = Client(REMOTE_ADDR="203.0.113.30")
    for _ in range(3):
        client.post("/login/", {"username": clerk.username, "password": "wrong-password-1"})
    assert client.post("/login/", {"username": clerk.username, "password": PASSWORD}).status_code == 429

    assert run("axes_reset_username", clerk.username, "--by", "李安全") == "1 attempts removed.\n"

    response = client.post("/login/", {"username": clerk.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    entry = AuditEntry.objects.get(action="security.unlock")
    assert entry.user is None  # an operator at the console, named in the row
    assert entry.query == {
        "username": clerk.username,
        "ip": "203.0.113.30",
        "unlocked_by": "李安全",
        "via": "manage.py axes_reset_username",
    }


@pytest.mark.parametrize(
    ("args", "lifted"),
    [
        (["axes_reset"], [("wang", "10.0.0.1"), ("li", "10.0.0.2"), ("zhao", "10.0.0.1")]),
        (["axes_reset_ip", "10.0.0.1"], [("wang", "10.0.0.1"), ("zhao", "10.0.0.1")]),
        (["axes_reset_username", "li", "zhao"], [("li", "10.0.0.2"), ("zhao", "10.0.0.1")]),
        (["axes_reset_ip_username", "10.0.0.1", "zhao"], [("zhao", "10.0.0.1")]),
    ],
)
def test_each_unlocking_command_audits_every_lockout_it_lifts(args, lifted):
    for username, ip in [("wang", "10.0.0.1"), ("li", "10.0.0.2"), ("zhao", "10.0.0.1")]:
        locked(username, ip)
    assert run(*args, "--by", "李安全") == f"{len(lifted)} attempts removed.\n"
    remaining = set(AccessAttempt.objects.values_list("username", "ip_address"))
    assert remaining.isdisjoint(lifted) and len(remaining) == 3 - len(lifted)
    assert unlocks() == [
        {"username": username, "ip": ip, "unlocked_by": "李安全", "via": f"manage.py {args[0]}"}
        for username, ip in sorted(lifted, key=lambda pair: ["wang", "li", "zhao"].index(pair[0]))
    ]


def test_nothing_to_unlock_writes_no_row():
    assert run("axes_reset_username", "nobody", "--by", "李安全") == "No attempts found.\n"
    assert unlocks() == []


@pytest.mark.parametrize(
    "args",
    [
        ["axes_reset"],
        ["axes_reset_ip", "10.0.0.1"],
        ["axes_reset_username", "wang"],
        ["axes_reset_ip_username", "10.0.0.1", "wang"],
    ],
)
@pytest.mark.parametrize("by", [None, "   "])
def test_without_the_operators_name_nothing_is_unlocked(args, by):
    locked("wang", "10.0.0.1")
    with pytest.raises(CommandError, match="Name who unlocks with --by NAME"):
        run(*args, *(["--by", by] if by is not None else []))
    assert AccessAttempt.objects.count() == 1
    assert unlocks() == []


def test_from_the_shell_a_missing_operator_exits_non_zero_with_the_reason():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "axes_reset"],
        cwd=root,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "CommandError: 请用 --by 姓名 写明解锁人" in result.stderr  # the operator's language, zh-hans
