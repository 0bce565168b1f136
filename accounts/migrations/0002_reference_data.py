from django.db import migrations

from accounts.reference import COUNTY_CODE, STATIONS, TOWNSHIPS, station_name


def load(apps, schema_editor):
    Township = apps.get_model("accounts", "Township")
    Station = apps.get_model("accounts", "Station")
    RegistrationPoint = apps.get_model("accounts", "RegistrationPoint")
    names = dict(TOWNSHIPS)
    for code, name in TOWNSHIPS:
        Township.objects.update_or_create(code=code, defaults={"name": name, "county_code": COUNTY_CODE})
    for code, township_code, _letter in STATIONS:
        station, _ = Station.objects.update_or_create(
            code=code,
            defaults={
                "name": station_name(names[township_code]),
                "township_id": township_code,
                "is_demo": True,
            },
        )
        RegistrationPoint.objects.get_or_create(
            name=f"{station.name}户籍窗口", defaults={"station": station, "kind": "station"}
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
