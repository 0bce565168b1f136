"""The staff login page (django.contrib.auth LoginView with our template)."""

import pytest
from django.conf import settings

from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # as set by factories.user


@pytest.fixture(autouse=True)
def _production_default_language(settings):
    settings.LANGUAGE_CODE = "zh-hans"


def test_login_page_renders_the_form_in_the_default_language(client):
    response = client.get("/login/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert 'name="username"' in page and 'name="password"' in page and "csrfmiddlewaretoken" in page
    assert 'action="/i18n/setlang/"' in page  # the language can be switched before logging in


def test_wrong_password_is_refused_with_a_message(client):
    clerk = factories.user("clerk")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.post("/login/", {"username": clerk.username, "password": "wrong-password-1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="en">' in page
    assert "Please enter a correct username and password" in page
    assert f'value="{clerk.username}"' in page


def test_login_leads_to_the_start_page_and_logout_back_to_login(client):
    clerk = factories.user("clerk")
    response = client.post("/login/", {"username": clerk.username, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "/counter/" in response.content.decode()

    response = client.post("/logout/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert client.get("/").status_code == 302


def test_login_returns_to_the_page_asked_for(client):
    officer = factories.user("officer")
    response = client.get("/search/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/search/"
    response = client.post(
        "/login/?next=/search/", {"username": officer.username, "password": PASSWORD, "next": "/search/"}
    )
    # An officer signs in with a one-time code too; the page asked for is carried through that step.
    assert response.status_code == 302 and response["Location"] == "/login/second-factor/?next=%2Fsearch%2F"
    response = client.post(response["Location"], {"otp_token": factories.totp_code(officer), "next": "/search/"})
    assert response.status_code == 302 and response["Location"] == "/search/"
