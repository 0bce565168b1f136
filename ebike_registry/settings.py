"""Settings for ebike-registry, read from the environment (see .env.example).

Defaults work on one development machine: PostgreSQL+PostGIS and Redis on 127.0.0.1, as the setup
script prepares them. Nothing exists only in production settings.
"""

import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from ebike_registry import db_url, keys
from ebike_registry.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Secret keys (ebike_registry.keys): from the environment (or NAME_FILE), else the files
# scripts/setup.sh writes once to var/keys/ (mode 0600), else public development defaults, on which
# the web server refuses to start unless DEBUG is on. Certificate QR tokens have their own key, so
# rotating SECRET_KEY never voids a printed certificate; retired keys stay valid in the *_FALLBACKS.
SECRET_KEY = keys.key_read(
    "SECRET_KEY", default_file=BASE_DIR / "var/keys/secret-key", development_default=keys.DEV_SECRET_KEY
)
SECRET_KEY_FALLBACKS = keys.key_fallbacks("SECRET_KEY_FALLBACKS")
CERTIFICATE_SIGNING_KEY = keys.key_read(
    "CERTIFICATE_SIGNING_KEY",
    default_file=BASE_DIR / "var/keys/certificate-key",
    development_default=keys.DEV_CERTIFICATE_KEY,
)
CERTIFICATE_SIGNING_KEY_FALLBACKS = keys.key_fallbacks("CERTIFICATE_SIGNING_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    # Sign-in (accounts.signin): lockout, the second factor (TOTP and recovery codes), API tokens.
    # Before axes: its unlocking commands (axes_reset*) are replaced by audited ones that need
    # --by NAME (Django runs the command of the app listed first).
    "accounts.lockout_commands",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    # Recovery codes are accounts.models.RecoveryCodeDevice (digests only), not otp_static's clear
    # tokens; accounts migration 0008 moved any such tokens over and dropped otp_static's tables.
    "knox",
    "rest_framework_gis",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served locally instead of from a CDN
    "csp",
    # The policy layer: each app's rules.py registers the object-level rules of its own objects.
    "rules.apps.AutodiscoverRulesConfig",
    "accounts",
    "vehicles",
    "tracking",
    "cases",
    "web",
    "stats",
    "demo",  # seed_demo, seed_demo_activity: demo data only
]

MIDDLEWARE = [
    # First, so that it counts and times every answer, the other middleware's too (GET /metrics).
    "ebike_registry.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "web.csp.CSPMiddleware",
    "ebike_registry.query_guard.RefuseNulMiddleware",  # PostgreSQL text cannot hold NUL
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The superuser passes every check: each of its requests is audited (break-glass).
    "accounts.breakglass.BreakGlassAuditMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.IdleTimeoutMiddleware",
    "accounts.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a lockout flagged during the request into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ebike_registry.urls"
WSGI_APPLICATION = "ebike_registry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.watermark",
            ],
        },
    },
]

# DATABASE_URL may name several servers, libpq's multi-host form (ebike_registry/db_url.py):
# postgis://u:p@127.0.0.2,127.0.0.3:5432/ebike?target_session_attrs=read-write (or host:port pairs);
# every connection then goes to whichever of them is the primary (README "Operations").
DATABASES = {
    "default": db_url.parse(
        env_str("DATABASE_URL", "postgis://ebike:ebike@127.0.0.1:5432/ebike"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
        test_options={"NAME": os.environ.get("TEST_DATABASE_NAME")} if os.environ.get("TEST_DATABASE_NAME") else None,
    )
}


# DATABASE_URL is the role this process connects as. The owner role (ebike, owns every table) for
# migrate, the tests, operators' commands and the maintenance worker (partitions, retention, audit
# seals); the web server and Celery run as the app role, the terminal gateway as the gateway role:
# scripts/run.sh and docker-compose.yml start them with DATABASE_URL set to the URLs below. Those
# roles own nothing and hold only what accounts.db_roles grants them after every migrate. Unset, a
# runtime URL is DATABASE_URL's server and database as ebike_app / ebike_gateway (password = name).
def _runtime_url(role: str) -> str:
    # The owner's servers (every host of a multi-host URL) and libpq options, as `role`.
    return db_url.build(DATABASES["default"], user=role, password=role)


DATABASE_RUNTIME_ROLES = {
    "app": db_url.parse(env_str("DATABASE_APP_URL", _runtime_url("ebike_app"))),
    "gateway": db_url.parse(env_str("DATABASE_GATEWAY_URL", _runtime_url("ebike_gateway"))),
}

# The synchronous standby (README "Operations", scripts/standby.sh, ebike_registry/standby.py). With
# STANDBY_ENABLED, `make run` runs the database as a project-managed pair (primary and streaming
# standby on their own loopback addresses, DATABASE_URL multi-host) and starts the watcher: it asks
# the primary, as STANDBY_ADMIN_URL (a libpq URL or conninfo; default the postgres superuser on
# DATABASE_URL's servers, following the primary), whether STANDBY_NAME streams. When it is away for
# STANDBY_ALONE_AFTER_S seconds the alarm (STANDBY_ALARM_FILE, an ERROR in the log) is raised and
# STANDBY_AWAY_POLICY decides: "wait" (no commit is acknowledged until it is back) or "alone"
# (synchronous replication off until it is back within STANDBY_RESTORE_LAG_BYTES).
STANDBY_ENABLED = env_bool("STANDBY_ENABLED", False)
STANDBY_NAME = env_str("STANDBY_NAME", "ebike_standby")
STANDBY_ADMIN_URL = env_str(
    "STANDBY_ADMIN_URL",
    "host={HOST} port={PORT} user=postgres dbname=postgres target_session_attrs=read-write".format(
        HOST=DATABASES["default"]["HOST"] or "127.0.0.1", PORT=DATABASES["default"]["PORT"] or 5432
    ),
)
STANDBY_AWAY_POLICY = env_str("STANDBY_AWAY_POLICY", "wait")
if STANDBY_AWAY_POLICY not in {"wait", "alone"}:
    raise ImproperlyConfigured(f"STANDBY_AWAY_POLICY must be wait or alone, got {STANDBY_AWAY_POLICY!r}")
STANDBY_ALONE_AFTER_S = env_int("STANDBY_ALONE_AFTER_S", 30)
STANDBY_RESTORE_LAG_BYTES = env_int("STANDBY_RESTORE_LAG_BYTES", 1 << 20)
STANDBY_ALARM_FILE = env_str("STANDBY_ALARM_FILE", str(BASE_DIR / "var/standby/alarm.json"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Object-level permissions (user.has_perm(perm, obj)) come from the rules each app registers; the
# model backend answers the role permissions of accounts.roles.
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "vehicles:home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# MLPS level 3 expects sessions to time out: a session ends after SESSION_IDLE_MINUTES without real
# activity (accounts.middleware.IdleTimeoutMiddleware, audited). Requests the pages make on their
# own (map polling, the duty room's refresh) do not count, so the session is saved only on activity.
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
# HTTPS=true, for a deployment behind a TLS-terminating reverse proxy that sets X-Forwarded-Proto:
# secure session and CSRF cookies, HSTS, plain http redirected to https (except /healthz, which
# container health checks ask over plain http), and the proxy's scheme header trusted.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 365 * 24 * 3600) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS and env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = HTTPS and env_bool("HSTS_PRELOAD", True)

# --- Signing in (accounts.signin; README "Security") --------------------------------------------
# Lockout (django-axes): after LOGIN_FAILURE_LIMIT failed passwords or one-time codes for one
# account, or from one address, signing in is refused for LOGIN_COOLOFF_MINUTES after the last
# failure (tries during the lockout extend it). The address is accounts.audit.client_ip's.
# These are the defaults: the security administrator sets both on /security/policy/ (3-10 failures,
# 5-1440 minutes), and axes asks the policy in force (accounts.security_policy).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
AXES_FAILURE_LIMIT = "accounts.security_policy.axes_failure_limit"
AXES_COOLOFF_TIME = "accounts.security_policy.axes_cool_off"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "accounts.audit.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.auth_views.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]  # masked in what axes logs and keeps
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the audit trail (accounts.auth_signals)
# Roles that must sign in with a second factor (TOTP, with recovery codes); others may enrol. The
# floor MLPS level 3 requires: the security policy may add roles, never drop one of these.
OTP_REQUIRED_ROLES = env_list("OTP_REQUIRED_ROLES", ["officer", "admin", "sysadmin", "auditadmin", "secadmin"])
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "ebike-registry")
# The admin may reset (delete) a device but never shows an authenticator key or a recovery code.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# API tokens (django-rest-knox): stored as SHA-512 digests, valid API_TOKEN_HOURS from issue.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_HOURS", 8)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
}

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One date format per kind on every page and export, whatever the language: 2026-12-06 and
# 2026-12-06 14:03 (ebike_registry/formats).
FORMAT_MODULE_PATH = ["ebike_registry.formats"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Chart.js from Debian's libjs-chart.js (scripts/setup.sh installs it), served as our own static file.
CHARTJS_DIR = Path(env_str("CHARTJS_DIR", "/usr/share/javascript/chart.js"))
# Leaflet and Leaflet.markercluster for the maps come from Debian (libjs-leaflet,
# libjs-leaflet.markercluster, installed by scripts/setup.sh), served as our own static files.
LEAFLET_DIR = Path(env_str("LEAFLET_DIR", "/usr/share/javascript/leaflet"))
STATICFILES_DIRS = [
    BASE_DIR / "static",
    *[
        (prefix, path)
        for prefix, path in (("vendor/chart.js", CHARTJS_DIR), ("vendor/leaflet", LEAFLET_DIR))
        if path.is_dir()
    ],
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
# Photos and scanned documents are served only by vehicles.views.photo, which asks the policy and
# audits. Behind nginx, set this to an `internal` location aliasing MEDIA_ROOT (e.g. /protected-media/)
# and the view answers with X-Accel-Redirect instead of streaming the file itself.
MEDIA_ACCEL_REDIRECT = env_str("MEDIA_ACCEL_REDIRECT", "")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Shared by every web process: the public check's rate limit must hold across workers.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL", REDIS_URL),
        "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
    }
}
# Reverse proxies in front of the web server that append the client's address to X-Forwarded-For
# (accounts.audit.client_ip). 0: the socket's peer is the client and the header is ignored.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# The public stolen check (page and API alike): checks per client address per minute.
STOLEN_CHECK_RATE_PER_MINUTE = env_int("STOLEN_CHECK_RATE_PER_MINUTE", 30)
# The public evidence check (POST /api/v1/evidence/verify): checks per client address per minute.
EVIDENCE_VERIFY_RATE_PER_MINUTE = env_int("EVIDENCE_VERIFY_RATE_PER_MINUTE", 30)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One beat at a time, however many are started: each waits for a PostgreSQL advisory lock, trying
# every BEAT_LOCK_RETRY_SECONDS (ebike_registry/beat.py).
CELERY_BEAT_SCHEDULER = "ebike_registry.beat:LockedScheduler"
BEAT_LOCK_RETRY_SECONDS = env_float("BEAT_LOCK_RETRY_SECONDS", 2.0)
# Every task is in its app's tasks.py, which the worker finds by itself (autodiscover_tasks), and
# pins its name (queued messages and this schedule use it): no module to import besides.
CELERY_IMPORTS: tuple[str, ...] = ()
# Every periodic task, in one place (the settings each one reads are in its app's section below).
CELERY_BEAT_SCHEDULE = {
    # Signed daily heads of the audit trail (accounts.audit_chain).
    "accounts-audit-seal": {"task": "accounts.tasks.seal_audit_trail", "schedule": 60.0},
    # Derived work of committed positions (tracking.derived), offline alarms, partitions, retention.
    "tracking-outbox": {"task": "tracking.tasks.process_outbox", "schedule": 2.0},
    "tracking-offline-alarms": {"task": "tracking.tasks.raise_offline_alarms", "schedule": 60.0},
    "tracking-partitions": {"task": "tracking.tasks.maintain_partitions", "schedule": 3600.0},
    "tracking-retention": {"task": "tracking.tasks.apply_retention", "schedule": 6 * 3600.0},
    "tracking-missing-flags": {"task": "tracking.tasks.reconcile_missing_flags", "schedule": 3600.0},
    # Claims whose waiting period is over (cases.claims.services), webhooks due again, oversight.
    "cases-claims-eligible": {"task": "cases.claim_tasks.claims_make_eligible", "schedule": 3600.0},
    "cases-webhooks-requeue": {"task": "cases.tasks.requeue_webhooks", "schedule": 60.0},
    "cases-reviews-weekly": {
        "task": "cases.tasks.reviews_weekly_summary",
        "schedule": crontab(hour=8, minute=0, day_of_week="mon"),
    },
    "cases-lookup-alerts": {"task": "cases.tasks.lookup_volume_alerts", "schedule": 3600.0},
    "stats-rollups": {"task": "stats.tasks.refresh_rollups", "schedule": env_float("STATS_REFRESH_SECONDS", 300.0)},
}
# Partitions, retention and audit seals need the owner role (accounts.db_roles): they go to the
# "maintenance" queue, whose worker alone connects as the owner (scripts/run.sh, docker-compose.yml);
# the app role's worker consumes the default queue and never sees them.
_OWNER_TASKS = (
    "tracking.tasks.maintain_partitions",
    "tracking.tasks.apply_retention",
    "accounts.tasks.seal_audit_trail",
)
CELERY_TASK_ROUTES = {task: {"queue": "maintenance"} for task in _OWNER_TASKS}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "knox.auth.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three, the JSON one refusing absurd nesting, NULs and lone surrogates (ebike_registry.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "ebike_registry.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "ebike_registry.schema.AutoSchema",  # documents the shared error answers
    "EXCEPTION_HANDLER": "ebike_registry.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "ebike_registry.api.Pagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ebike-registry API",
    "DESCRIPTION": "E-bike registration, plates, insurance, terminals and theft cases for a county "
    "public-security bureau.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and Swagger UI are for staff roles only (ebike_registry.api_docs); Swagger UI's
    # files come from drf-spectacular-sidecar, and it never sends the schema to an outside validator.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Names of the schema's enums that several fields share (drf-spectacular would make them up).
    "ENUM_NAME_OVERRIDES": {
        "DutyCallKindEnum": "cases.models.DutyCall.Kind",
        "DutyCallStatusEnum": "cases.models.DutyCall.Status",
        "NotificationKindEnum": "cases.models.Notification.Kind",
    },
}

# Content-Security-Policy (django-csp; web.csp adds the map tile server to img-src). Scripts and
# styles only from our own static files: no inline <script>, style="" or on…= anywhere. Images may
# be data: URLs (Leaflet blanks the tiles it drops with one, Swagger UI draws its icons so; an
# image cannot run script). With CSP_REPORT_ONLY the same policy is only reported, not enforced.
_CSP_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# (The environment variable is CSP_REPORT_ONLY; no setting of that name: django-csp 4 refuses its old CSP_* settings.)
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP_POLICY
else:
    CONTENT_SECURITY_POLICY = _CSP_POLICY

# --- Domain settings -----------------------------------------------------------------------------
# Plate numbers are "<series prefix><zero-padded number>"; the prefix belongs to a station's series.
PLATE_NUMBER_WIDTH = env_int("PLATE_NUMBER_WIDTH", 5)
# When a lost plate is replaced, keep its number on the new plate (true) or issue the next number
# from the station's series (false). The old physical plate is void either way.
PLATE_REPLACE_KEEPS_NUMBER = env_bool("PLATE_REPLACE_KEEPS_NUMBER", False)
# Temporary (white) plates for non-conforming bikes: transition period in months from registration,
# capped by the city's end date when one is set (YYYY-MM-DD).
TEMPORARY_PLATE_MONTHS = env_int("TEMPORARY_PLATE_MONTHS", 36)
TEMPORARY_PLATE_END_DATE = env_str("TEMPORARY_PLATE_END_DATE", "")
# Some cities refuse transfers of bikes on temporary plates.
TEMPORARY_PLATE_TRANSFER_ALLOWED = env_bool("TEMPORARY_PLATE_TRANSFER_ALLOWED", True)
# Base URL printed in the certificate QR code (the verification page); empty = this request's host.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "")
# Retention (tracking.retention; each app declares its tables in <app>/retention.py): days kept,
# counted from the position's time. Pings also govern presence cells and last positions; duty calls
# go once closed, webhook messages once delivered or given up, outbox rows once processed. Rows in
# a legal hold's window (from the report's last-seen time minus the margin) stay until the hold's
# release is older than their period. These are the defaults: the security administrator sets
# each period on /security/policy/ (7-3650 days; accounts.security_policy).
PING_RETENTION_DAYS = env_int("PING_RETENTION_DAYS", 180)
ALARM_RETENTION_DAYS = env_int("ALARM_RETENTION_DAYS", 180)
SIGHTING_RETENTION_DAYS = env_int("SIGHTING_RETENTION_DAYS", 180)
DUTY_CALL_RETENTION_DAYS = env_int("DUTY_CALL_RETENTION_DAYS", 180)
NOTIFICATION_RETENTION_DAYS = env_int("NOTIFICATION_RETENTION_DAYS", 180)
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 30)
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7)
LEGAL_HOLD_MARGIN_MINUTES = env_int("LEGAL_HOLD_MARGIN_MINUTES", 60)
# Geocoding of theft-report addresses (cases/workflow/geocoding.py): "gazetteer" (offline, the bureau's
# place list as CSV name,latitude,longitude) or "nominatim" (the bureau's own Nominatim server).
GEOCODER = env_str("GEOCODER", "gazetteer")
GEOCODER_GAZETTEER = env_str("GEOCODER_GAZETTEER", str(BASE_DIR / "cases" / "data" / "gazetteer.csv"))
GEOCODER_DOMAIN = env_str("GEOCODER_DOMAIN", "")
GEOCODER_SCHEME = env_str("GEOCODER_SCHEME", "https")
GEOCODER_TIMEOUT_S = env_int("GEOCODER_TIMEOUT_S", 3)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # ID numbers, phones and owner names searched by GET never reach a log line (ebike_registry/log_masking.py).
    "filters": {"mask_personal": {"()": "ebike_registry.log_masking.MaskPersonalData"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_personal"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # runserver's request lines carry the query string; send them through the masking handler too.
    "loggers": {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Debian 12 ships GDAL 3.6, which cannot block file/network access from spatial references. The
# system never opens spatial files or references supplied by users, so the warning is silenced.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# A fix implying a faster trip than this from the previous fix is stored flagged as an outlier.
OUTLIER_SPEED_KMH = env_float("OUTLIER_SPEED_KMH", 150.0)

# Terminal gateway (run_gateway): it reads its GATEWAY_* variables from the environment itself, each
# with the default of tracking/gateway/config.py (a GATEWAY_* setting here would take precedence);
# the most common ones are listed in .env.example.

# Derived work run from the ingestion outbox, in this order (tracking.derived): the stolen bikes'
# sightings for the tracking side, then the duty room's calls and the sighting episodes
# (cases.alerts.duty_room, cases.alerts.services; their settings are below).
INGEST_HANDLERS = [
    "tracking.derived.stolen_bike_sightings",
    "cases.alerts.duty_room.duty_calls_raise",
    "cases.alerts.services.sightings_record",
]
# An outbox batch's terminals whose handlers fail are retried after OUTBOX_RETRY_BASE_SECONDS,
# doubling up to OUTBOX_RETRY_MAX_SECONDS, and set aside as dead after OUTBOX_MAX_ATTEMPTS failed
# attempts (5 s … ~10 min by default) until `manage.py outbox_rerun` (README "Operations").
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 5)
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 300)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 8)

# Map tiles (tracking/map_tiles.py): "osm" (OpenStreetMap-style XYZ, WGS-84; MAP_TILES_URL overrides the
# server), "tianditu" (CGCS2000 ≈ WGS-84; needs TIANDITU_KEY) or "amap" (GCJ-02: positions are
# converted for display). The maps draw their data layers whether or not a tile server answers.
MAP_TILES = env_str("MAP_TILES", "osm")
MAP_TILES_URL = env_str("MAP_TILES_URL", "")
TIANDITU_KEY = env_str("TIANDITU_KEY", "")
# Seconds between the officer map's polls for new positions of stolen bikes.
MAP_POLL_SECONDS = env_int("MAP_POLL_SECONDS", 5)

# --- Insurance claims and evidence export (cases.claims.services, cases.evidence.services) --------------------------
# Days a filed theft case must stay unrecovered before its claim becomes eligible. Unset: each
# insurance scheme's own waiting period (InsuranceScheme.waiting_days, 60 by default, docs/domain.md#insurance);
# set: one county-wide period for every scheme.
CLAIM_WAITING_DAYS = env_int("CLAIM_WAITING_DAYS", 60) if os.environ.get("CLAIM_WAITING_DAYS") else None
# A case filed by an officer awaits approval by a leader of its station, another person than the
# filer, before it gives its officers any duty (false: the filer's entry approves it).
CASE_APPROVAL_BY_ANOTHER = env_bool("CASE_APPROVAL_BY_ANOTHER", True)
# The case number (立案编号) is typed as the bureau's case platform issued it, and checked against
# this pattern (a Python regex, matched in full). The default takes the platform's case number, "A"
# and 22 digits (12-digit unit code, year and month, 4-digit serial: A1302290500002026120001), and
# the number written on the filing decision, 玉公（刑）立字〔2026〕42号 / 玉公（治）受案字〔2026〕7号.
CASE_NUMBER_PATTERN = env_str(
    "CASE_NUMBER_PATTERN",
    r"A\d{22}"  # the case platform's number
    r"|[\u4e00-\u9fff]{1,8}[（(]?[刑治][）)]?(?:立|受案|案)字[〔\[［]\d{4}[〕\]］]\d{1,6}号",  # the decision's
)
re.compile(CASE_NUMBER_PATTERN)  # a broken pattern stops the start, not the first filing
# Days a theft report may wait for the decision to file it or not (normally 3, 7 when facts need
# checking: docs/domain.md#theft-reports-and-cases); reports undecided longer are listed for their
# station's leader.
REPORT_DECISION_DAYS = env_int("REPORT_DECISION_DAYS", 3)
# Ed25519 private key that signs evidence bundles (PEM, PKCS#8). Created with mode 0600 on first use
# or by `manage.py evidence_key`; only its public half is needed to verify a bundle.
EVIDENCE_SIGNING_KEY_FILE = Path(env_str("EVIDENCE_SIGNING_KEY_FILE", str(BASE_DIR / "var/keys/evidence-ed25519.pem")))
# Trajectory points written into one bundle at most (a month at 30 s is ~90,000); the PDF prints
# the first EVIDENCE_PDF_POINTS of them and refers to the JSON bundle for the rest.
EVIDENCE_MAX_POINTS = env_int("EVIDENCE_MAX_POINTS", 200_000)
EVIDENCE_PDF_POINTS = env_int("EVIDENCE_PDF_POINTS", 2_000)

# Sightings and the duty room (cases.alerts.services, cases.alerts.duty_room). A stolen bike's sighting is one episode:
# a new one starts after the terminal was silent, or the bike still, for the gap. A position moves
# the bike when its speed or its distance from the episode's latest place reaches these figures.
SIGHTING_EPISODE_GAP_MINUTES = env_int("SIGHTING_EPISODE_GAP_MINUTES", 30)
SIGHTING_MOVING_KMH = env_float("SIGHTING_MOVING_KMH", 5.0)
SIGHTING_STILL_METRES = env_float("SIGHTING_STILL_METRES", 50.0)
# An armed bike this far from where it was armed raises a displacement call (GPS drift stays below).
ARMED_DISPLACEMENT_METRES = env_float("ARMED_DISPLACEMENT_METRES", 100.0)
# The duty room's "closed calls too" list reaches back this many days (older calls are history).
DUTY_CLOSED_DAYS = env_int("DUTY_CLOSED_DAYS", 7)
# Alarms already older than this when they arrived (replayed from a terminal's buffer) raise no call.
DUTY_ALARM_MAX_AGE_MINUTES = env_int("DUTY_ALARM_MAX_AGE_MINUTES", 30)
# Station webhooks: seconds to wait for the receiver per attempt (retries back off up to 15 min).
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
# Every webhook carries X-Webhook-Signature: sha256=<HMAC of the body> with WEBHOOK_SECRET, or, when
# that is empty, with a secret created on first use in WEBHOOK_SECRET_KEY_FILE (manage.py webhook_secret).
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET", "")
WEBHOOK_SECRET_KEY_FILE = Path(env_str("WEBHOOK_SECRET_KEY_FILE", str(BASE_DIR / "var/keys/webhook-secret")))
# Webhooks go to https URLs only; true also allows plain http (a receiver on the bureau's own network).
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)
# Decimal places of the positions a webhook carries (2: ~1 km; cases/alerts/webhooks.py says why).
WEBHOOK_POSITION_DECIMALS = env_int("WEBHOOK_POSITION_DECIMALS", 2)
# Oversight (cases.tracing.oversight): each Monday morning every leader hears of the past week's looks on a
# stated reason; every hour, accounts looking up far more than usual are reported to the security
# administrators (at least LOOKUP_ALERT_MIN looks in 24 h and more than LOOKUP_ALERT_FACTOR times their
# daily median over the LOOKUP_BASELINE_DAYS before).
LOOKUP_ALERT_MIN = env_int("LOOKUP_ALERT_MIN", 200)
LOOKUP_ALERT_FACTOR = env_int("LOOKUP_ALERT_FACTOR", 5)
LOOKUP_BASELINE_DAYS = env_int("LOOKUP_BASELINE_DAYS", 28)

# --- The tamper-evident audit trail (accounts.audit_chain; sealed on the maintenance queue) -------
# The key that signs each day's chain head: by default the bureau key that signs evidence bundles.
AUDIT_SIGNING_KEY_FILE = Path(env_str("AUDIT_SIGNING_KEY_FILE", str(EVIDENCE_SIGNING_KEY_FILE)))
# Former signing keys, to verify the heads they signed before a rotation (never to sign): each a
# public key in base64 (as the heads record it) or a key file (PEM), comma- or line-separated.
AUDIT_SIGNING_KEY_FALLBACKS = keys.key_fallbacks("AUDIT_SIGNING_KEY_FALLBACKS")
# Where the signed daily chain heads go: another disk or host in production (an NFS mount, a
# write-only share), out of reach of whoever can rewrite the database.
AUDIT_HEAD_DIR = Path(env_str("AUDIT_HEAD_DIR", str(BASE_DIR / "var/audit-heads")))
# Days a signed head is kept; never fewer than 183 (six months of network logs), whatever is set.
AUDIT_HEAD_RETENTION_DAYS = env_int("AUDIT_HEAD_RETENTION_DAYS", 400)

# --- Backups (scripts/backup.sh with pgBackRest; README "Operations" > "Backups") -------------------
# The scripts read every BACKUP_* variable themselves (scripts/backup_lib.sh); Django reads only what
# /healthz reports (ebike_registry.backup_status): whether backups are on, the status file each
# `make backup` writes (`pgbackrest info`, no secrets), and the age past which the newest backup is
# reported stale. A relative path is relative to the repository.
BACKUP_ENABLED = env_bool("BACKUP_ENABLED", False)
BACKUP_STATUS_FILE = BASE_DIR / env_str("BACKUP_STATUS_FILE", "var/backup-status.json")
BACKUP_MAX_AGE_HOURS = env_int("BACKUP_MAX_AGE_HOURS", 26)

# --- Health and metrics (ebike_registry/health.py, ebike_registry/metrics.py) -----------------------
# /healthz answers 503 only when this node cannot serve (database unreachable or read-only, Redis
# down); what needs an operator's look is a warning in its body (README "Operations" > "What to
# watch"). Each of its queries is cut off after HEALTH_STATEMENT_TIMEOUT_MS.
HEALTH_STATEMENT_TIMEOUT_MS = env_int("HEALTH_STATEMENT_TIMEOUT_MS", 1000)
HEALTH_REPLICATION_LAG_WARN_BYTES = env_int("HEALTH_REPLICATION_LAG_WARN_BYTES", 16 << 20)
HEALTH_REPLICATION_LAG_WARN_S = env_int("HEALTH_REPLICATION_LAG_WARN_S", 30)
HEALTH_OUTBOX_AGE_WARN_S = env_int("HEALTH_OUTBOX_AGE_WARN_S", 60)
# Each standby's state and lag (pg_stat_replication) are shown only to members of pg_read_all_stats,
# which the runtime roles are not (accounts.db_roles): /healthz reads them as this monitoring role,
# which scripts/db.sh and docker/db-init create with that membership and no table privilege. Unset:
# DATABASE_URL's servers as ebike_monitor (password = name); empty: the app role (details hidden).
_MONITOR_ROLE = "ebike_monitor"
HEALTH_DATABASE_URL = env_str(
    "HEALTH_DATABASE_URL",
    db_url.build(DATABASES["default"], user=_MONITOR_ROLE, password=_MONITOR_ROLE, scheme="postgresql"),
)
# GET /metrics (Prometheus text) and /healthz's parts beyond its two checks are for the scraper and
# the operators only (ebike_registry.ops_access): a request from an address in
# METRICS_ALLOWED_NETWORKS (CIDRs, the client address as accounts.audit.client_ip finds it) or with
# "Authorization: Bearer <METRICS_TOKEN>". Neither set: /metrics refused, /healthz's checks only.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", [])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is no address or network") from _exc
