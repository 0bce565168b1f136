from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

SQL = """
-- Partial plate search (selectors.vehicle_search, number LIKE '%…%').
CREATE INDEX plate_number_trgm_idx ON vehicles_plate USING gin (number gin_trgm_ops);
CREATE TRIGGER vehicles_registrationevent_append_only
    BEFORE UPDATE OR DELETE ON vehicles_registrationevent
    FOR EACH ROW EXECUTE FUNCTION ebike_reject_change();
"""
REVERSE = """
DROP TRIGGER IF EXISTS vehicles_registrationevent_append_only ON vehicles_registrationevent;
DROP INDEX IF EXISTS plate_number_trgm_idx;
"""


class Migration(migrations.Migration):
    dependencies = [("vehicles", "0001_initial"), ("accounts", "0003_audit_append_only")]
    operations = [TrigramExtension(), migrations.RunSQL(SQL, REVERSE)]
