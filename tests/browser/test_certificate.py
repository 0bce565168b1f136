"""The certificate's QR code scans: the page is rendered on screen and as printed (A5, print media)
at about 300 dpi, and zbar decodes the QR code in each screenshot to exactly the verification URL
the page links to; that URL opens the public verification page of this bike."""

import pytest
import segno

from tests import factories
from tests.browser.conftest import decode_qr, log_in, screenshot
from vehicles.certificates import certificate_verify
from vehicles.services.registration import vehicle_register
from vehicles.views import QR_MODULE_MM, QR_QUIET_ZONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CSS_PX_PER_MM = 96 / 25.4
# A5 portrait less the 8 mm margins of the certificate's @page rule, in CSS pixels.
A5_PRINTABLE = {"width": round(132 * CSS_PX_PER_MM), "height": round(194 * CSS_PX_PER_MM)}


@pytest.fixture
def page_context_options() -> dict:
    # 3 device pixels per CSS pixel: 288 dpi, about what a counter's printer prints.
    return {"device_scale_factor": 3, "viewport": {"width": 1100, "height": 900}}


def test_the_certificate_qr_code_decodes_to_its_verification_url(page, live_server):
    clerk = factories.user("clerk")
    registration = vehicle_register(
        clerk=clerk,
        owner=factories.owner_data(name="张三"),
        vehicle=factories.vehicle_data(),
        insurance_consent=True,
        documents=["invoice"],
    )
    vehicle, plate = registration.vehicle, registration.plate

    log_in(page, live_server, clerk)
    page.goto(f"{live_server.url}/certificates/{vehicle.pk}/")
    verify_url = page.get_attribute(".toolbar a[href*='/verify/']", "href")
    prefix = f"{live_server.url}/verify/"
    assert verify_url.startswith(prefix)
    verification = certificate_verify(verify_url.removeprefix(prefix).rstrip("/"))
    assert verification is not None
    assert (verification.vehicle, verification.plate_number) == (vehicle, plate.number)

    # On screen, as the clerk checks it before printing.
    on_screen = screenshot(page, "certificate", full_page=True)
    assert decode_qr(on_screen) == [verify_url]

    # As printed: print media on the printable width of an A5 sheet.
    page.emulate_media(media="print")
    page.set_viewport_size(A5_PRINTABLE)
    printed = screenshot(page, "certificate-print", full_page=True)
    assert decode_qr(printed) == [verify_url]
    # Drawn at its own print size, the 4-module quiet zone included, neither cropped nor squeezed.
    modules = segno.make(verify_url, error="m").symbol_size(border=QR_QUIET_ZONE)[0]
    box = page.locator(".cert-qr svg.qr").bounding_box()
    assert box is not None
    assert box["width"] / CSS_PX_PER_MM == pytest.approx(modules * QR_MODULE_MM, abs=0.2)
    assert box["height"] == pytest.approx(box["width"], abs=0.5)

    # What a person scanning it in the street opens.
    page.emulate_media(media="screen")
    page.goto(verify_url)
    assert page.locator(".verify.verify-ok").is_visible()
    assert plate.number in page.locator(".verify").inner_text()
