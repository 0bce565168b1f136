"""Small things a first day at the counter finds (issue 18, "Smaller"): the duty room draws a bike's
plate as a plate, in its colours, and the dashboard's exports are buttons."""

import datetime
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from cases.models import DutyCall
from tests import factories
from tests.cases.alerting import send
from tests.tracking import factories as tf
from vehicles.models import Plate

pytestmark = pytest.mark.django_db

STYLESHEET = Path(settings.BASE_DIR) / "static" / "css" / "registry.css"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_duty_room_draws_the_bikes_plate_as_a_plate_in_its_colours():
    officer = factories.user("officer")
    terminal = tf.terminal()
    at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=30)
    send(terminal, tf.fix(0, base=at, lat=39.8950, lon=117.7520, alarms=("sos",)))
    call = DutyCall.objects.get()
    plate = Plate.objects.get(vehicle_id=terminal.vehicle_id, status=Plate.Status.ISSUED)

    html = client_for(officer).get("/duty/").content.decode()
    card = html[html.index(f'id="call-{call.pk}"') :]
    # The same markup as the certificate's plate (templates/vehicles/_plate.html): the kind's colours.
    assert f'<span class="plate plate-{plate.kind}">{plate.number}</span>' in card
    assert re.search(rf"\.plate-{plate.kind}\s*\{{[^}}]*background", STYLESHEET.read_text())


def test_the_dashboards_exports_are_buttons(admin_user):
    response = client_for(admin_user).get("/stats/")
    html = response.content.decode()
    exports = response.context["exports"]
    assert exports
    for name, formats in exports.items():
        for url in (formats["csv"], formats["xlsx"]):
            link = re.search(rf'<a ([^>]*)href="{re.escape(url)}"', html.replace("&amp;", "&"))
            assert link, f"{name}: no link to {url}"
            assert re.search(r'class="[^"]*\bbutton\b', link.group(1)), f"{name}: {link.group(0)} is a bare link"
    # … and a button is drawn as one by the site's stylesheet, whatever page it is on.
    assert re.search(r"(^|\n)a\.button, \.button \{[^}]*background: var\(--accent\)", STYLESHEET.read_text())
