import os
import zlib
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from accounts.security_policy import policy_cache_drop
from tests import factories
from tests.tracking.gateway_harness import GatewayProcess, database_url


def _flush_again_after_a_deadlock() -> None:
    """A transactional test ends with a flush (TRUNCATE of every table) while a module's gateway
    process may still be renewing its leases: each takes its tables' locks in its own order, and
    PostgreSQL breaks the deadlock by failing one. When that is the flush, it runs again."""
    from django.db.backends.base.operations import BaseDatabaseOperations
    from django.db.utils import OperationalError

    flush = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(3):
            try:
                return flush(self, sql_list)
            except OperationalError as exc:
                if "deadlock detected" not in str(exc) or attempt == 2:
                    raise
        return None

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush


def pytest_configure(config):
    """The cache of each test database in a Redis database of its own (1-15, from the test database's
    name): tests that call cache.clear() empty that one only, not the rate limits, policy cache or
    broker of another suite running beside them on this machine (database 0 stays the broker's)."""
    _flush_again_after_a_deadlock()
    if os.environ.get("CACHE_URL"):
        return
    name = os.environ.get("TEST_DATABASE_NAME") or "test_ebike"
    number = 1 + zlib.crc32(name.encode()) % 15
    parts = urlsplit(settings.REDIS_URL)
    settings.CACHES["default"]["LOCATION"] = urlunsplit(parts._replace(path=f"/{number}"))


@pytest.fixture
def clerk(db):
    return factories.user("clerk")


@pytest.fixture
def officer(db):
    return factories.user("officer")


@pytest.fixture
def admin_user(db):
    return factories.user("admin")


@pytest.fixture
def owner_user(db):
    return factories.user("owner", station_code=None)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def clerk_api(clerk):
    client = APIClient()
    client.force_authenticate(clerk)
    return client


@pytest.fixture
def officer_api(officer):
    client = APIClient()
    client.force_authenticate(officer)
    return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """With TEST_DATABASE_ROLE=app the tests connect as that runtime role once the owner has created
    and migrated the test database: they do what the web server and Celery may do, nothing more
    (tests/accounts/test_db_roles.py runs a part of the suite so)."""
    role = os.environ.get("TEST_DATABASE_ROLE")
    if not role:
        yield
        return
    default = connections["default"]
    owner = {"USER": default.settings_dict["USER"], "PASSWORD": default.settings_dict["PASSWORD"]}
    runtime = settings.DATABASE_RUNTIME_ROLES[role]
    with django_db_blocker.unblock():
        default.close()
        default.settings_dict.update(USER=runtime["USER"], PASSWORD=runtime["PASSWORD"])
    yield
    with django_db_blocker.unblock():
        default.close()
        default.settings_dict.update(owner)  # the owner drops the test database


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Test users are created by the dozen; the production hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _security_policy_uncached():
    # The policy in force is cached in the shared Redis (accounts.security_policy): a version a test
    # saves is rolled back with the test's transaction, its cache entry is not.
    policy_cache_drop()
    yield
    policy_cache_drop()


@pytest.fixture(autouse=True)
def _english_messages(settings):
    # Assertions read the English msgids; page tests that check the Chinese UI pin zh-hans themselves.
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker):
    """`manage.py run_gateway` on free ports against the test database, for a module's tests (they
    commit what the gateway must see: transactional database)."""
    process = GatewayProcess(database_url())
    try:
        yield process
    finally:
        process.stop()
