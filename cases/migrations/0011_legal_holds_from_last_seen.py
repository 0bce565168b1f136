from django.db import migrations

# Holds taken before windows existed have no start and keep the bike's whole history. Each was made
# for a theft report ("theft report <number>", cases.workflow.services.hold_reason): give it that report's
# last-seen time, so it keeps the theft window only, like every hold made since.
FILL = """
UPDATE tracking_legalhold AS h
   SET held_from = r.last_seen_at
  FROM cases_theftreport AS r
 WHERE h.held_from IS NULL
   AND h.reason = 'theft report ' || r.number
   AND h.vehicle_id = r.vehicle_id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0013_legalhold_held_from"),
        ("cases", "0010_reporttransition_append_only"),
    ]

    operations = [migrations.RunSQL(FILL, migrations.RunSQL.noop)]
