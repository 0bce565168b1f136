"""The runtime roles' privileges on accounts' tables, and on the tables of Django and the libraries
(accounts.db_roles explains the scheme). Tables not listed here belong to another app's module."""

from accounts.db_roles import APPEND_ONLY, READ, READ_WRITE, deletes

APP = {
    "accounts_user": READ_WRITE,
    "accounts_township": READ_WRITE,
    "accounts_station": READ_WRITE,
    "accounts_registrationpoint": READ_WRITE,
    # Who looked at what: append-only (also refused by a trigger), sealed into a hash chain.
    "accounts_auditentry": APPEND_ONLY,
    # The chain is written by the maintenance worker as the owner; the app role may only read it
    # (verify_audit run from a web container).
    "accounts_auditseal": READ,
    # Each change of the security policy is a new version: append-only (also refused by a trigger).
    "accounts_securitypolicy": APPEND_ONLY,
    # Group and permission memberships are link rows: changing a user's roles deletes the old ones.
    "accounts_user_groups": deletes("changing a user's roles deletes the old membership rows"),
    "accounts_user_user_permissions": deletes("changing a user's permissions deletes the old link rows"),
    "auth_group": READ_WRITE,
    "auth_group_permissions": deletes("changing a group's permissions deletes the old link rows"),
    "auth_permission": READ_WRITE,
    "django_content_type": READ_WRITE,
    "django_admin_log": APPEND_ONLY,
    # Signing out, a new sign-in on the same browser and expired sessions delete session rows.
    "django_session": deletes("signing out and session expiry delete the session row"),
    # Sign-in (accounts.signin): API tokens, lockout counters, second-factor devices.
    "knox_authtoken": deletes("signing out of the API and token expiry delete the token row"),
    "axes_accessattempt": deletes("a successful sign-in and the cool-off time reset the failure counters"),
    "axes_accessattemptexpiration": deletes("goes with its access attempt (cascade)"),
    "axes_accessfailurelog": deletes(
        "django-axes keeps a bounded number of failure rows per user, deleting the oldest"
    ),
    "axes_accesslog": deletes("django-axes prunes its own access log (off here: sign-ins are in the audit trail)"),
    "otp_totp_totpdevice": deletes("resetting a user's second factor deletes the TOTP device"),
    # Recovery codes (accounts.models.RecoveryCodeDevice), kept as digests only.
    "accounts_recoverycodedevice": deletes(
        "issuing new recovery codes, and resetting a user's second factor, delete the device"
    ),
    "accounts_recoverycode": deletes("a recovery code is deleted when it is used"),
    # Migrations are applied by the owner; the app role reads what was applied (manage.py check).
    "django_migrations": READ,
}
GATEWAY: dict = {}
