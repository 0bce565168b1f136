"""Cases as the bureau files them: an officer files, a leader of the station approves."""

from accounts.models import User
from cases.models import Case
from cases.services import case_approve, case_file
from tests import factories


def station_leader(officer: User) -> User:
    """A leader (the `admin` group) of the officer's station."""
    return factories.user("admin", station_code=officer.station.code if officer.station_id else None)


def approved_case(*, filer: User, number: str, officers: list[User], kind: str = "criminal", summary: str = "") -> Case:
    case = case_file(filer=filer, number=number, kind=kind, officers=officers, summary=summary)
    if case.approved_by_id is None:
        case = case_approve(approver=station_leader(filer), case_id=case.pk)
    return case
