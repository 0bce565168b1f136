from django.db import migrations

# Claim steps are the record of who moved a claim when; like the audit trail they are never
# rewritten (ebike_reject_change comes from accounts 0003).
APPEND_ONLY = """
CREATE TRIGGER cases_claimstep_append_only
    BEFORE UPDATE OR DELETE ON cases_claimstep
    FOR EACH ROW EXECUTE FUNCTION ebike_reject_change();
"""
DROP = "DROP TRIGGER IF EXISTS cases_claimstep_append_only ON cases_claimstep;"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_audit_append_only"),
        ("cases", "0003_claim_steps_evidence_claims"),
    ]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
