from django.db import migrations

# Pings are partitioned by day of device time, so retention drops whole partitions instead of
# deleting rows. The primary key (terminal_id, device_time) stores each fix once, whatever the
# retries, and serves per-terminal time-range reads (trajectories); the GiST index serves the
# spatio-temporal queries of the cases app. A default partition takes times outside the prepared
# range (old buffered fixes) so no acknowledged ping is ever refused for lack of a partition.
SQL = """
CREATE TABLE tracking_ping (
    terminal_id bigint NOT NULL,
    device_time timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    point geography(Point, 4326) NOT NULL,
    speed_kmh real,
    course real,
    altitude real,
    satellites smallint,
    valid boolean NOT NULL,
    battery smallint,
    alarms jsonb NOT NULL DEFAULT '[]',
    outlier boolean NOT NULL DEFAULT false,
    PRIMARY KEY (terminal_id, device_time)
) PARTITION BY RANGE (device_time);
CREATE INDEX tracking_ping_point_gist ON tracking_ping USING gist (point);
CREATE TABLE tracking_ping_default PARTITION OF tracking_ping DEFAULT;
"""

REVERSE = "DROP TABLE IF EXISTS tracking_ping CASCADE;"


def create_first_partitions(apps, schema_editor):
    from tracking.partitions import partitions_ensure

    partitions_ensure(connection=schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]
    operations = [
        migrations.RunSQL(SQL, REVERSE),
        migrations.RunPython(create_first_partitions, migrations.RunPython.noop),
    ]
