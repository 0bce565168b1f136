"""Owner logins: an owner's account is a User in the "owner" group whose Owner record points at it
(Owner.user). The link is made here, found by the owner's ID number, so it is the registry's
identity check that decides whose bikes a login sees."""

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.audit import audit_record
from accounts.models import User
from accounts.roles import OWNER
from vehicles.identifiers import normalize_id_number
from vehicles.models import Owner


def owner_login_create(*, by: User | None, id_number: str, username: str, password: str) -> User:
    """A login for the owner with this ID number (or credit code), linked to their Owner record."""
    owner = Owner.objects.filter(id_number=normalize_id_number(id_number)).first()
    if owner is None:
        raise ValidationError({"id_number": _("No registered owner has this ID number.")})
    if owner.user_id is not None:
        raise ValidationError({"id_number": _("This owner already has a login.")})
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": _("This user name is taken.")})
    candidate = User(username=username, first_name=owner.name)
    validate_password(password, user=candidate)
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, first_name=owner.name)
        user.groups.add(Group.objects.get(name=OWNER))
        updated = Owner.objects.filter(pk=owner.pk, user__isnull=True).update(user=user)
        if updated != 1:
            raise ValidationError({"id_number": _("This owner already has a login.")})
        audit_record(user=by, action="owner.login_create", object_type="owner", object_id=owner.pk, result_count=1)
    return user
