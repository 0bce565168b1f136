from django.core.management.base import BaseCommand, CommandParser

from stats.rollups import rollups_rebuild, rollups_refresh


class Command(BaseCommand):
    help = (
        "Refresh the statistics rollups (--rebuild: from scratch, e.g. after seed_demo or an import). The first"
        " run counts every alarm and rescue call still kept; days retention has thinned are never lowered."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true")

    def handle(self, *args: object, rebuild: bool = False, **options: object) -> None:
        (rollups_rebuild if rebuild else rollups_refresh)()
        self.stdout.write("statistics rollups " + ("rebuilt" if rebuild else "refreshed"))
