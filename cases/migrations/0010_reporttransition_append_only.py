from django.db import migrations

# A report's workflow steps are the record of who moved it when: like claim steps and the audit
# trail they are never rewritten, whatever role connects (ebike_reject_change: accounts 0003).
APPEND_ONLY = """
CREATE TRIGGER cases_reporttransition_append_only
    BEFORE UPDATE OR DELETE ON cases_reporttransition
    FOR EACH ROW EXECUTE FUNCTION ebike_reject_change();
"""
DROP = "DROP TRIGGER IF EXISTS cases_reporttransition_append_only ON cases_reporttransition;"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_audit_append_only"),
        ("cases", "0009_notification_review_security"),
    ]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
