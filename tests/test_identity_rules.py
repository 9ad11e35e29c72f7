"""The identity rules on their own: name folding, keys, and which case a referral reaches."""

from __future__ import annotations

import os
import re
from datetime import date

import pytest

from rules.identity import IdentityRefused, IndexedCase, child_keys, fold, new_case_id, resolve

SECRET = os.urandom(32)
DOB = date(2018, 5, 5)


def keys(first="Maria", last="Garcia", dob=DOB, cin=None):
    return child_keys(SECRET, first_name=first, last_name=last, date_of_birth=dob, cin=cin)


def indexed(k, case_id="case-" + "a" * 20, has_cin=False):
    return IndexedCase(case_id=case_id, dob=k.dob, has_cin=has_cin)


@pytest.mark.parametrize("written", ["María García-López", "MARIA GARCIA LOPEZ", " maria  garcíalópez ",
                                     "Maria Garcia Lopez", "María García‐López"])
def test_fold_ignores_accents_case_spacing_and_hyphens(written):
    assert fold(written) == "mariagarcialopez"


def test_fold_transliterates_other_scripts_and_apostrophes():
    assert fold("Nguyễn") == "nguyen"
    assert fold("O'Brien") == fold("OBrien") == "obrien"
    assert fold("Ægir Þórsson") == "aegirthorsson"


def test_keys_are_keyed_hashes_not_plaintext():
    k = keys(cin="91234567A")
    for key in (k.cin, k.name_dob, k.last_dob, k.dob):
        # A 64-digit hex digest holds no name; digits of a date or CIN can appear in any digest by
        # chance (about 1 run in 1,000 had "2018" somewhere), so they are not searched for.
        assert re.fullmatch(r"[0-9a-f]{64}", key)
    other_secret = child_keys(os.urandom(32), first_name="Maria", last_name="Garcia", date_of_birth=DOB,
                              cin="91234567A")
    assert other_secret.cin != k.cin  # not a plain hash anyone could recompute


def test_same_folded_name_same_keys():
    assert keys("María", "García") == keys("MARIA", "garcia")
    assert keys(cin="91234567a").cin == keys(cin="91234567A").cin


def test_new_child_gets_a_new_case_from_the_cin_or_the_name():
    with_cin = resolve(keys(cin="91234567A"), None, [])
    assert with_cin.outcome == "new_case" and with_cin.case_id == new_case_id(keys(cin="91234567A"))
    assert set(with_cin.claims) == {"cin", "name_dob", "last_dob"}
    without = resolve(keys(), None, [])
    assert without.outcome == "new_case" and without.case_id != with_cin.case_id
    assert set(without.claims) == {"name_dob", "last_dob"}


def test_same_cin_same_case_whatever_the_name():
    first = keys(cin="91234567A")
    again = keys("María", "García-Lopez", cin="91234567A")
    found = resolve(again, indexed(first, has_cin=True), [])
    assert found.outcome == "same_cin" and found.case_id == "case-" + "a" * 20
    assert found.claims["name_dob"] == again.name_dob  # the new spelling finds the case from now on


def test_no_cin_same_name_and_dob_same_case():
    k = keys()
    found = resolve(keys("MARÍA", "garcia"), None, [indexed(k)])
    assert found.outcome == "same_name_dob" and found.case_id == "case-" + "a" * 20


def test_same_name_and_dob_different_cins_is_a_new_case_flagged():
    first = keys(cin="91234567A")
    other = keys(cin="97654321B")
    found = resolve(other, None, [indexed(first, has_cin=True)])
    assert found.outcome == "possible_duplicate"
    assert found.case_id != "case-" + "a" * 20 and found.possible_duplicate_of == ("case-" + "a" * 20,)


def test_cin_arriving_later_is_added_to_the_case():
    found = resolve(keys(cin="91234567A"), None, [indexed(keys(), has_cin=False)])
    assert found.outcome == "cin_added" and found.case_id == "case-" + "a" * 20 and "cin" in found.claims


def test_cin_on_another_case_with_another_dob_is_refused_naming_no_one():
    first = keys(cin="91234567A")
    with pytest.raises(IdentityRefused) as refused:
        resolve(keys("Rosa", "Lopez", dob=date(2019, 1, 2), cin="91234567A"), indexed(first, has_cin=True), [])
    message = str(refused.value)
    assert "different date of birth" in message and "check the CIN" in message
    for secret_bit in ("Maria", "Garcia", "2018", "91234567A", "case-"):
        assert secret_bit not in message


def test_no_cin_and_two_children_with_that_name_is_refused():
    a = indexed(keys(cin="91234567A"), "case-" + "a" * 20, has_cin=True)
    b = indexed(keys(cin="97654321B"), "case-" + "b" * 20, has_cin=True)
    with pytest.raises(IdentityRefused, match="add the child's Medi-Cal number"):
        resolve(keys(), None, [a, b])
