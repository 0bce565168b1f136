"""SELECTs on vehicles' tables that code without Django embeds as a subquery (the ingestion plan,
which the terminal gateway runs on its own connections). Its columns are the interface; PostgreSQL
pulls a plain subquery up into the statement around it, so the plan is that of a written-out join.
"""

# Each bike's state: (id, status), the two columns of vehicles_vehicle the gateway's role may read.
VEHICLE_STATES_SQL = "SELECT id, status FROM vehicles_vehicle"
