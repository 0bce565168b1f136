from celery import shared_task

from stats.rollups import rollups_refresh


@shared_task(name="stats.tasks.refresh_rollups", ignore_result=True)
def refresh_rollups() -> None:
    """Beat: closed days into RegistrationDay, fresh PlatedCount and TheftMonth, and the alarm and
    rescue days recounted while their rows are still kept (stats.rollups)."""
    rollups_refresh()
