"""Recovery codes that django-otp's otp_static kept in clear (StaticToken.token) become SHA-256 digests
in accounts' RecoveryCodeDevice and RecoveryCode; then otp_static's tables, its applied migrations and
its content types and permissions go.

otp_static is no longer installed, so its tables are read with SQL where a database made before has
them; on a new database, which never had them, nothing happens. A digest does not give the code
back: the reverse does nothing.
"""

import hashlib

from django.db import migrations

STATIC_TABLES = ("otp_static_statictoken", "otp_static_staticdevice")
# The unused codes of each account's confirmed otp_static devices.
STATIC_CODES = """
SELECT d.user_id, t.token
  FROM otp_static_staticdevice AS d
  JOIN otp_static_statictoken AS t ON t.device_id = d.id
 WHERE d.confirmed
 ORDER BY d.user_id, t.id
"""


def _digest(code: str) -> str:
    # accounts.models.recovery_code_digest as of this migration.
    return hashlib.sha256("".join(code.split()).replace("-", "").lower().encode()).hexdigest()


def static_tokens_hash(apps, schema_editor):
    connection = schema_editor.connection
    existing = set(connection.introspection.table_names())
    if "otp_static_staticdevice" in existing and "otp_static_statictoken" in existing:
        Device = apps.get_model("accounts", "RecoveryCodeDevice")
        Code = apps.get_model("accounts", "RecoveryCode")
        with connection.cursor() as cursor:
            cursor.execute(STATIC_CODES)
            codes: dict[int, set[str]] = {}
            for user_id, token in cursor.fetchall():
                codes.setdefault(user_id, set()).add(_digest(token))
        has_new_codes = set(Device.objects.filter(user_id__in=codes).values_list("user_id", flat=True))
        for user_id, digests in codes.items():
            if user_id in has_new_codes:
                continue  # codes issued since replaced the old ones
            device = Device.objects.create(user_id=user_id, name="recovery codes", confirmed=True)
            Code.objects.bulk_create(Code(device=device, digest=digest) for digest in sorted(digests))
    with connection.cursor() as cursor:
        for table in STATIC_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")
        # Were otp_static installed again, its migrations would create its tables afresh.
        cursor.execute("DELETE FROM django_migrations WHERE app = 'otp_static'")
    # Its permissions (and the role groups' links to them) go with its content types.
    apps.get_model("contenttypes", "ContentType").objects.filter(app_label="otp_static").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_recovery_codes"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [migrations.RunPython(static_tokens_hash, migrations.RunPython.noop)]
