"""The runtime roles' privileges on vehicles' tables (accounts.db_roles explains the scheme)."""

from accounts.db_roles import APPEND_ONLY, READ_WRITE, columns

APP = {
    "vehicles_owner": READ_WRITE,
    "vehicles_vehicle": READ_WRITE,
    "vehicles_vehiclephoto": READ_WRITE,
    "vehicles_plateseries": READ_WRITE,
    "vehicles_plate": READ_WRITE,
    "vehicles_insurancescheme": READ_WRITE,
    "vehicles_insurancepolicy": READ_WRITE,
    # Every registration operation: append-only (also refused by a trigger).
    "vehicles_registrationevent": APPEND_ONLY,
}
GATEWAY = {
    # Ingestion flags the last positions of stolen bikes (tracking.ingest FLAG_MISSING_SQL): it reads
    # a bike's status, never its owner, frame number or anything else of the record.
    "vehicles_vehicle": columns("id", "status"),
}
