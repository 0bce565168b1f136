"""seed_demo_activity: theft reports, alarms, cases, rescue calls and estimates for the dashboard.

    python manage.py seed_demo --vehicles 20000
    python manage.py seed_demo_activity --reports 1000 [--seed 7]

Tops the demo records (demo.activity) up to the given number of theft reports, then rebuilds the
statistics rollups so the dashboard shows them at once.
"""

import random

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.activity import seed_activity
from stats.rollups import rollups_rebuild
from vehicles.models import Vehicle


class Command(BaseCommand):
    help = "Add demo theft reports, alarms, cases, rescue calls and plate-rate estimates (after seed_demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reports", type=int, default=1_000, help="demo theft reports in all (default: %(default)s)"
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed")

    def handle(self, *args: object, reports: int, seed: int | None, **options: object) -> None:
        if reports < 0:
            raise CommandError("--reports must be 0 or more")
        if not Vehicle.objects.exists():
            raise CommandError("no vehicles yet: run `manage.py seed_demo --vehicles N` first")
        seeded = seed_activity(reports, rng=random.Random(seed))
        rollups_rebuild()
        self.stdout.write(
            f"added {seeded.reports} theft reports, {seeded.alarms} alarms, {seeded.cases} cases,"
            f" {seeded.calls} rescue calls, {seeded.estimates} estimates; statistics rollups rebuilt"
        )
