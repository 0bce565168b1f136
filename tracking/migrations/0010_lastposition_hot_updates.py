"""Last positions: the missing bikes' points get their own column and partial index, so that no
index names `point` and moving a bike that is not missing is a HOT update. Free room is kept on
each page for those updates (fillfactor 80; pages written before this migration get it as they
are rewritten)."""

import django.contrib.gis.db.models.fields
import django.contrib.postgres.indexes
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0009_ping_cells"),
    ]

    operations = [
        migrations.AddField(
            model_name="lastposition",
            name="missing_point",
            field=django.contrib.gis.db.models.fields.PointField(
                geography=True, null=True, spatial_index=False, srid=4326
            ),
        ),
        migrations.RunSQL(
            "UPDATE tracking_lastposition SET missing_point = point WHERE vehicle_missing",
            migrations.RunSQL.noop,
        ),
        # The schema editor leaves the condition out of a spatial index: the SQL says it.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX lastposition_missing_gist; CREATE INDEX lastposition_missing_gist ON "
                    "tracking_lastposition USING gist (missing_point) WHERE missing_point IS NOT NULL",
                    "DROP INDEX lastposition_missing_gist; CREATE INDEX lastposition_missing_gist ON "
                    "tracking_lastposition USING gist (point) WHERE vehicle_missing",
                ),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="lastposition", name="lastposition_missing_gist"),
                migrations.AddIndex(
                    model_name="lastposition",
                    index=django.contrib.postgres.indexes.GistIndex(
                        condition=models.Q(("missing_point__isnull", False)),
                        fields=["missing_point"],
                        name="lastposition_missing_gist",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(
            "ALTER TABLE tracking_lastposition SET (fillfactor = 80)",
            "ALTER TABLE tracking_lastposition RESET (fillfactor)",
        ),
    ]
