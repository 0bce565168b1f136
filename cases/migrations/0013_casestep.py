import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# A case's steps are the record of who did what to it: like report transitions, never rewritten,
# whatever role connects (ebike_reject_change: accounts 0003).
APPEND_ONLY = """
CREATE TRIGGER cases_casestep_append_only
    BEFORE UPDATE OR DELETE ON cases_casestep
    FOR EACH ROW EXECUTE FUNCTION ebike_reject_change();
"""
DROP = "DROP TRIGGER IF EXISTS cases_casestep_append_only ON cases_casestep;"


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0012_conflict_calls"),
        ("vehicles", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CaseStep",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("file", "filed (立案)"),
                            ("approve", "filing approved"),
                            ("link", "linked"),
                            ("unlink", "unlinked"),
                            ("solve", "solved (破案)"),
                            ("close", "closed (结案)"),
                        ],
                        max_length=8,
                        verbose_name="action",
                    ),
                ),
                ("at", models.DateTimeField(auto_now_add=True, verbose_name="at")),
                ("note", models.CharField(blank=True, max_length=500, verbose_name="note")),
                (
                    "by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="officer",
                    ),
                ),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="steps",
                        to="cases.case",
                        verbose_name="case",
                    ),
                ),
                (
                    "report",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="cases.theftreport",
                        verbose_name="report",
                    ),
                ),
                (
                    "vehicle",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="vehicles.vehicle",
                        verbose_name="vehicle",
                    ),
                ),
            ],
            options={"verbose_name": "case step", "verbose_name_plural": "case steps", "ordering": ["at", "id"]},
        ),
        migrations.RunSQL(APPEND_ONLY, DROP),
    ]
