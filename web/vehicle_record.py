"""What the web app adds to the vehicle's filing record page: the bike's last position, for those
who may trace it. vehicles.views finds this module through ebike_registry.app_declarations
("vehicle_record"), so the page's app imports nothing from the layer above it."""

from typing import Any

from django.http import HttpRequest

from accounts.audit import client_ip
from vehicles.models import Vehicle
from web.map_selectors import record_last_position


def record_context(*, request: HttpRequest, vehicle: Vehicle) -> dict[str, Any]:
    return {"last_position": record_last_position(user=request.user, vehicle=vehicle, ip=client_ip(request))}
