"""Settings read from the environment: a value that does not parse stops the start with the
variable's name, instead of running on a wrong default."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from ebike_registry.env import env_float, env_int


@pytest.mark.parametrize(("raw", "expected"), [(None, 7), ("", 7), ("42", 42), ("-3", -3), (" 5 ", 5)])
def test_an_integer_setting_reads_the_value_or_the_default(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("EBIKE_TEST_INT", raising=False)
    else:
        monkeypatch.setenv("EBIKE_TEST_INT", raw)
    assert env_int("EBIKE_TEST_INT", 7) == expected


@pytest.mark.parametrize("raw", ["2.5", "ten", "1e3", "0x10"])
def test_an_integer_setting_refuses_what_is_no_integer(monkeypatch, raw):
    monkeypatch.setenv("EBIKE_TEST_INT", raw)
    with pytest.raises(ImproperlyConfigured, match=r"EBIKE_TEST_INT must be an integer"):
        env_int("EBIKE_TEST_INT", 7)


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 2.0), ("", 2.0), ("2", 2.0), ("0.25", 0.25), ("1e3", 1000.0), ("-1.5", -1.5)]
)
def test_a_number_setting_reads_the_value_or_the_default(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("EBIKE_TEST_FLOAT", raising=False)
    else:
        monkeypatch.setenv("EBIKE_TEST_FLOAT", raw)
    value = env_float("EBIKE_TEST_FLOAT", 2.0)
    assert value == expected
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("raw", "said"), [("fast", "number"), ("2,5", "number"), ("nan", "finite number"), ("inf", "finite number")]
)
def test_a_number_setting_refuses_what_is_no_finite_number(monkeypatch, raw, said):
    monkeypatch.setenv("EBIKE_TEST_FLOAT", raw)
    with pytest.raises(ImproperlyConfigured, match=rf"EBIKE_TEST_FLOAT must be a {said}"):
        env_float("EBIKE_TEST_FLOAT", 2.0)
