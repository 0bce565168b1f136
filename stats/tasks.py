from celery import shared_task

from stats.rollups import rollups_refresh


@shared_task(ignore_result=True)
def refresh_rollups() -> None:
    """Beat: closed days into RegistrationDay, a fresh PlatedCount snapshot (stats.rollups)."""
    rollups_refresh()
