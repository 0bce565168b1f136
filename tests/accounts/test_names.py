"""Names as people write them: Chinese family name first without a space, Latin names given first."""

import pytest

from accounts.models import User
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("given", "family", "shown"),
    [
        ("娜", "李", "李娜"),
        ("秀英", "王", "王秀英"),
        ("强", "欧阳", "欧阳强"),
        ("Anna", "Li", "Anna Li"),
        ("Anna", "", "Anna"),
        ("", "", ""),
    ],
)
def test_full_names_are_written_as_their_language_writes_them(given, family, shown):
    assert User(first_name=given, last_name=family).get_full_name() == shown


def test_the_page_header_names_the_clerk_family_name_first(client):
    clerk = factories.user("clerk")
    User.objects.filter(pk=clerk.pk).update(first_name="娜", last_name="李")
    clerk.refresh_from_db()
    client.force_login(clerk)
    page = client.get("/").content.decode()
    assert "李娜" in page
    assert "娜 李" not in page
