"""LastPosition.vehicle_missing goes: `missing_point IS NOT NULL` says the same (migration 0010 kept
both, in step). Going back fills the flag again from the column."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0010_lastposition_hot_updates"),
    ]

    operations = [
        migrations.RunSQL(
            migrations.RunSQL.noop,
            "UPDATE tracking_lastposition SET vehicle_missing = missing_point IS NOT NULL",
        ),
        migrations.RemoveField(
            model_name="lastposition",
            name="vehicle_missing",
        ),
    ]
