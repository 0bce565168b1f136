"""The runtime roles' privileges on cases' tables (accounts.db_roles explains the scheme)."""

from accounts.db_roles import APPEND_ONLY, READ_WRITE, deletes

APP = {
    "cases_theftreport": READ_WRITE,
    # Every status change of a report and every step of a claim: append-only.
    "cases_reporttransition": APPEND_ONLY,
    "cases_claimstep": APPEND_ONLY,
    "cases_casestep": APPEND_ONLY,
    "cases_case": READ_WRITE,
    "cases_case_officers": deletes("a leader taking an officer off a case deletes the assignment link row"),
    "cases_theftreport_assigned_officers": deletes(
        "a station leader taking an officer off a report deletes the assignment link row"
    ),
    "cases_caselink": READ_WRITE,
    "cases_sighting": READ_WRITE,
    "cases_notification": READ_WRITE,
    "cases_dutycall": READ_WRITE,
    "cases_webhookdelivery": READ_WRITE,
    "cases_insuranceclaim": READ_WRITE,
}
GATEWAY: dict = {}
