"""Outbox retries: a failing batch part is retried with backoff, then set aside as dead
(tracking.derived). The new columns have database defaults (a constant default or NULL: no table
rewrite), so the writers' raw INSERTs of the first four columns stay as they are.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0016_gateway_node_leases'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='ingestoutbox',
            options={'verbose_name': 'ingestion batch (outbox)', 'verbose_name_plural': 'ingestion batches (outbox)'},
        ),
        migrations.AddField(
            model_name='ingestoutbox',
            name='attempts',
            field=models.PositiveSmallIntegerField(db_default=0, verbose_name='failed attempts'),
        ),
        migrations.AddField(
            model_name='ingestoutbox',
            name='dead_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='set aside at'),
        ),
        migrations.AddField(
            model_name='ingestoutbox',
            name='last_error',
            field=models.TextField(blank=True, db_default='', verbose_name='last error'),
        ),
        migrations.AddField(
            model_name='ingestoutbox',
            name='next_attempt_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='next attempt at'),
        ),
        migrations.AlterField(
            model_name='ingestoutbox',
            name='created_at',
            field=models.DateTimeField(auto_now_add=True, verbose_name='created at'),
        ),
        migrations.AlterField(
            model_name='ingestoutbox',
            name='first_device_time',
            field=models.DateTimeField(verbose_name='first position time'),
        ),
        migrations.AlterField(
            model_name='ingestoutbox',
            name='last_device_time',
            field=models.DateTimeField(verbose_name='last position time'),
        ),
        migrations.AlterField(
            model_name='ingestoutbox',
            name='processed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='processed at'),
        ),
        migrations.AlterField(
            model_name='ingestoutbox',
            name='terminal_ids',
            field=models.JSONField(default=list, verbose_name='terminals'),
        ),
    ]
