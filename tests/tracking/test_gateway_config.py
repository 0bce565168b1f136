"""The gateway's GATEWAY_* variables: read from the environment, typed, refused when they do not parse;
a Django setting of the same name wins, and run_gateway's options win over both."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tracking.gateway.config import DEFAULTS, GatewayConfig


def test_defaults_apply_when_nothing_is_set(monkeypatch):
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    config = GatewayConfig.from_settings()
    assert (config.gt06_port, config.batch_ms, config.lease_s, config.proxy_from) == (5023, 30, 90.0, "")


def test_the_environment_sets_each_value_in_its_type(monkeypatch):
    monkeypatch.setenv("GATEWAY_GT06_PORT", "6023")
    monkeypatch.setenv("GATEWAY_LEASE_S", "45.5")
    monkeypatch.setenv("GATEWAY_PROXY_FROM", "10.0.0.1, 10.0.0.2")
    config = GatewayConfig.from_settings(jt808_port=7015)
    assert (config.gt06_port, config.lease_s, config.jt808_port) == (6023, 45.5, 7015)
    assert config.proxies == frozenset({"10.0.0.1", "10.0.0.2"})


def test_a_django_setting_wins_over_the_environment(monkeypatch, settings):
    monkeypatch.setenv("GATEWAY_LEASE_S", "45")
    settings.GATEWAY_LEASE_S = 90
    assert GatewayConfig.from_settings().lease_s == 90.0


@pytest.mark.parametrize(("name", "raw"), [("GATEWAY_GT06_PORT", "5023.5"), ("GATEWAY_LEASE_S", "soon")])
def test_a_value_that_does_not_parse_is_refused_with_its_name(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ImproperlyConfigured, match=name):
        GatewayConfig.from_settings()
