"""The policy for filing records and what hangs on them (photos, scanned documents)."""

from typing import Any

import rules

from accounts.rules import is_clerk, is_leader, is_officer
from vehicles.models import Owner


@rules.predicate
def has_owner_record(user: Any) -> bool:
    """The user's login is linked to an owner's registration (owners, and staff who own a bike)."""
    return user.is_authenticated and Owner.objects.filter(user_id=user.pk).exists()


@rules.predicate
def owns_photo_vehicle(user: Any, photo: Any) -> bool:
    return photo is not None and user.is_authenticated and photo.vehicle.owner.user_id == user.pk


# A bike's photos and scanned documents: the staff who work with its record, and its owner.
rules.add_perm("vehicles.view_photo", is_clerk | is_officer | is_leader | owns_photo_vehicle)
