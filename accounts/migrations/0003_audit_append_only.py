from django.db import migrations

# TRUNCATE stays possible for the table owner (test database flushes use it); the application
# only ever issues row statements, which the trigger covers.
# A generic trigger function shared by every append-only table (audit trail, registration events).
SQL = """
CREATE OR REPLACE FUNCTION ebike_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER accounts_auditentry_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditentry
    FOR EACH ROW EXECUTE FUNCTION ebike_reject_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS accounts_auditentry_append_only ON accounts_auditentry;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_reference_data")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
