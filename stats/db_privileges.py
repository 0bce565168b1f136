"""The runtime roles' privileges on stats' tables (accounts.db_roles explains the scheme)."""

from accounts.db_roles import READ_WRITE, deletes

_ROLLUP = "a rollup is rebuilt from the registry: stats.rollups deletes the days or months it recomputes"
_ESTIMATE = "an administrator corrects the plate-rate inputs in the admin, deleting a wrong row"
APP = {
    "stats_registrationday": deletes(_ROLLUP),
    "stats_platedcount": deletes(_ROLLUP),
    "stats_theftmonth": deletes(_ROLLUP),
    # Daily counts that outlive the alarms and duty calls retention removes: the refresh upserts
    # them (zero for a count that went away) and never deletes, so the application cannot erase them.
    "stats_alarmday": READ_WRITE,
    "stats_rescueday": READ_WRITE,
    "stats_rollupstate": READ_WRITE,
    "stats_plateestimate": deletes(_ESTIMATE),
    "stats_stationarea": deletes(_ESTIMATE),
}
GATEWAY: dict = {}
