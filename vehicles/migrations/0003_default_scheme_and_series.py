from django.db import migrations

from accounts.reference import STATIONS

# Design defaults from docs/domain.md#insurance: free, 3-year term, 60-day wait after filing, payout by the
# bike's age following the Tianjin programme's ¥600–1,200 range.
DEFAULT_BANDS = [
    {"max_age_months": 12, "amount": "1200.00"},
    {"max_age_months": 24, "amount": "900.00"},
    {"max_age_months": None, "amount": "600.00"},
]

# Prefixes: green 玉A, yellow (commercial) 玉AY, temporary white 玉A临, with A the station letter.
SERIES = [("green", ""), ("yellow", "Y"), ("white", "临")]


def load(apps, schema_editor):
    InsuranceScheme = apps.get_model("vehicles", "InsuranceScheme")
    PlateSeries = apps.get_model("vehicles", "PlateSeries")
    Station = apps.get_model("accounts", "Station")
    InsuranceScheme.objects.get_or_create(
        code="COUNTY-FREE",
        defaults={
            "name": "玉田县电动自行车免费盗抢险",
            "term_months": 36,
            "waiting_days": 60,
            "payout_bands": DEFAULT_BANDS,
            "is_default": True,
        },
    )
    for code, _township, letter in STATIONS:
        station = Station.objects.get(code=code)
        for kind, marker in SERIES:
            PlateSeries.objects.get_or_create(
                station=station,
                kind=kind,
                prefix=f"玉{letter}{marker}",
                defaults={"first_number": 1, "last_number": 99999, "next_number": 1},
            )


class Migration(migrations.Migration):
    dependencies = [("vehicles", "0002_search_indexes_and_append_only")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
