import pytest
from hypothesis import given
from hypothesis import strategies as st

from vehicles.identifiers import (
    credit_code_problem,
    frame_number_problem,
    mask_id_number,
    mask_phone,
    normalize_phone,
    phone_problem,
    resident_id_check_char,
    resident_id_problem,
)


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014", "130229198503151230"])
def test_domain_examples_of_resident_ids_pass(number):
    assert resident_id_problem(number) is None


def test_lowercase_x_and_spaces_are_accepted():
    assert resident_id_problem(" 11010519491231002x ") is None


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        ("130229198503151231", "check digit"),
        ("130229198502301236", "birth date"),  # 30 February
        ("130229850315123", "15-digit"),
        ("13022919850315123", "18 characters"),
        ("1302291985031512AB", "18 characters"),
    ],
)
def test_bad_resident_ids_name_the_reason(number, fragment):
    assert fragment in resident_id_problem(number)


def test_a_future_birth_date_is_refused():
    body = "13022920991231001"
    assert "birth date" in resident_id_problem(body + resident_id_check_char(body))


@given(st.from_regex(r"\A\d{17}\Z"))
def test_exactly_one_check_character_is_valid(first17):
    valid = resident_id_check_char(first17)
    birth_ok = resident_id_problem(first17 + valid) is None or "birth" in resident_id_problem(first17 + valid)
    assert birth_ok
    for other in "0123456789X":
        if other != valid:
            problem = resident_id_problem(first17 + other)
            assert problem is not None


def test_credit_code():
    assert credit_code_problem("91350100M000100Y43") is None
    assert credit_code_problem("91350100M000100Y44") is not None


@pytest.mark.parametrize("value", ["13812345678", "+86 138 1234 5678", "0086-13812345678"])
def test_phone_accepts_country_prefix_and_spacing(value):
    assert phone_problem(value) is None
    assert normalize_phone(value) == "13812345678"


@pytest.mark.parametrize("value", ["12812345678", "1381234567", "138123456789", "abcdefghijk"])
def test_phone_refuses_malformed(value):
    assert phone_problem(value) is not None


def test_frame_numbers():
    assert frame_number_problem("175721508069087") is None  # docs/domain.md#frame-numbers example
    assert frame_number_problem("LYDTDT2312Z000123") is None  # 17-character VIN style
    assert frame_number_problem("175711508069087") is not None  # type digit must be 2
    assert frame_number_problem("17572150806908") is not None
    assert frame_number_problem("LYDTDT2312Z00012I") is not None  # no I/O/Q in VINs


def test_masks_follow_the_domain_rule():
    assert mask_id_number("130229198503151230") == "130229********1230"
    assert mask_phone("13812345678") == "138****5678"
