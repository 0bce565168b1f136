# Notifications keep a message key and its parameters, rendered in the reader's language when shown
# (cases.alerts.notification_texts). Rows written before keep their stored text and are shown as it is.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0013_casestep"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="message",
            field=models.CharField(blank=True, default="", max_length=40, verbose_name="message"),
        ),
        migrations.AddField(
            model_name="notification",
            name="params",
            field=models.JSONField(blank=True, default=dict, verbose_name="parameters"),
        ),
    ]
