from django.db import migrations

# Cases filed before their steps were recorded get the history their rows still tell: filed
# (created_at, filed_by), approved by another person (approved_at), each link and unlink with its
# time, officer and reason. When such a case was solved or closed is not known: those steps are not
# invented. Cases that already have steps are left alone.
FILL = """
WITH earlier AS (
    SELECT c.* FROM cases_case AS c
     WHERE NOT EXISTS (SELECT 1 FROM cases_casestep AS s WHERE s.case_id = c.id)
)
INSERT INTO cases_casestep (case_id, action, at, by_id, report_id, vehicle_id, note)
SELECT id, 'file', created_at, filed_by_id, NULL::bigint, NULL::bigint, '' FROM earlier
UNION ALL
SELECT id, 'approve', approved_at, approved_by_id, NULL::bigint, NULL::bigint, '' FROM earlier
 WHERE approved_at IS NOT NULL AND approved_by_id IS DISTINCT FROM filed_by_id
UNION ALL
SELECT l.case_id, 'link', l.linked_at, l.linked_by_id, l.report_id, l.vehicle_id, l.reason
  FROM cases_caselink AS l JOIN earlier AS e ON e.id = l.case_id
UNION ALL
SELECT l.case_id, 'unlink', l.unlinked_at, l.unlinked_by_id, l.report_id, l.vehicle_id, l.unlink_reason
  FROM cases_caselink AS l JOIN earlier AS e ON e.id = l.case_id
 WHERE l.unlinked_at IS NOT NULL
ORDER BY 3;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0014_notification_message_params"),
    ]

    operations = [migrations.RunSQL(FILL, migrations.RunSQL.noop)]
