"""The county reference data (reference/counties.json) and its loader (models.counties)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# Runs with or without a conftest that puts the project root on sys.path.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pydantic import ValidationError  # noqa: E402

from models.counties import (  # noqa: E402
    COUNTIES,
    REFERENCE_FILE,
    County,
    CountyOffice,
    county_names,
    find_county,
)

PHC = "Partnership HealthPlan of California"
CCAH = "Central California Alliance for Health"
CENCAL = "CenCal Health"
HPSM = "Health Plan of San Mateo"
CALOPTIMA = "CalOptima Health"

# SPEC.md section 1, "Whole Child Model (WCM) counties".
SPEC_WCM = {
    **{
        county: PHC
        for county in [
            "Del Norte", "Humboldt", "Lake", "Lassen", "Marin", "Mendocino", "Modoc", "Napa",
            "Shasta", "Siskiyou", "Solano", "Sonoma", "Trinity", "Yolo",
            # from 2025
            "Butte", "Colusa", "Glenn", "Nevada", "Placer", "Plumas", "Sierra", "Sutter",
            "Tehama", "Yuba",
        ]
    },
    **{county: CCAH for county in ["Mariposa", "Merced", "Monterey", "San Benito", "Santa Cruz"]},
    "San Luis Obispo": CENCAL,
    "Santa Barbara": CENCAL,
    "San Mateo": HPSM,
    "Orange": CALOPTIMA,
}


def test_exactly_58_counties_with_unique_names_and_fips():
    assert len(COUNTIES) == 58
    names = [c.name for c in COUNTIES.values()]
    fips = [c.fips for c in COUNTIES.values()]
    assert len(set(names)) == 58
    assert len(set(fips)) == 58
    # California's county FIPS codes are the odd numbers 001..115, in alphabetical order.
    assert sorted(fips) == [f"{n:03d}" for n in range(1, 116, 2)]
    assert [COUNTIES[n].fips for n in county_names()] == sorted(fips)
    assert COUNTIES["Los Angeles"].fips == "037"
    assert COUNTIES["San Diego"].fips == "073"


def test_names_are_canonical_and_keys_match():
    for key, county in COUNTIES.items():
        assert key == county.name
        assert not county.name.lower().endswith("county")
        assert county.name == county.name.strip()


def test_county_names_sorted():
    names = county_names()
    assert names == sorted(names)
    assert len(names) == 58
    assert names[0] == "Alameda" and names[-1] == "Yuba"


def test_spec_wcm_counties_map_to_their_plans():
    assert len(SPEC_WCM) == 33
    for name, plan in SPEC_WCM.items():
        county = COUNTIES[name]
        assert county.model == "wcm", name
        assert county.wcm_plan == plan, name


def test_every_other_county_is_classic():
    classic = [c for c in COUNTIES.values() if c.name not in SPEC_WCM]
    assert len(classic) == 25
    for county in classic:
        assert county.model == "classic", county.name
        assert county.wcm_plan is None, county.name
    for name in ["Los Angeles", "Kern", "San Diego", "Fresno", "Alameda", "Sacramento", "Riverside"]:
        assert COUNTIES[name].model == "classic"


@pytest.mark.parametrize("name", ["Los Angeles", "Kern", "San Diego", "Fresno", "Orange", "Santa Clara"])
def test_known_independent_counties(name):
    assert COUNTIES[name].jurisdiction == "independent"


@pytest.mark.parametrize("name", ["Alpine", "Sierra", "Modoc", "Lake", "Trinity", "Mono", "Inyo"])
def test_known_dependent_counties(name):
    assert COUNTIES[name].jurisdiction == "dependent"


def test_offices_named_and_contacts_never_blank():
    for county in COUNTIES.values():
        assert county.office.name.strip()
        assert "CCS" in county.office.name
        for value in (county.office.phone, county.office.website):
            assert value is None or value.strip()
        if county.office.website is not None:
            assert county.office.website.startswith(("http://", "https://"))
    assert COUNTIES["Kern"].office.name == "Kern County CCS"


def test_reference_file_lists_sources():
    with open(REFERENCE_FILE, encoding="utf-8") as fh:
        raw = json.load(fh)
    assert raw["sources"] and all(isinstance(s, str) and s.strip() for s in raw["sources"])
    assert len(raw["counties"]) == 58


def test_models_are_frozen():
    kern = COUNTIES["Kern"]
    with pytest.raises(ValidationError):
        kern.jurisdiction = "dependent"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        kern.office.phone = "x"  # type: ignore[misc]
    assert isinstance(kern.office, CountyOffice)


@pytest.mark.parametrize(
    "spelling", ["Kern", "kern", "KERN", " KERN ", "Kern County", "kern county", "  Kern   COUNTY  ", "\tKern\n"]
)
def test_find_county_tolerates_case_whitespace_and_county_suffix(spelling):
    county = find_county(spelling)
    assert county is not None
    assert county.name == "Kern"


def test_find_county_multiword_names():
    assert find_county("los angeles").name == "Los Angeles"
    assert find_county("San  Luis   Obispo county").name == "San Luis Obispo"
    assert find_county("EL DORADO").name == "El Dorado"
    assert find_county("Contra Costa County").name == "Contra Costa"


@pytest.mark.parametrize("name", ["", "   ", "County", "Kernn", "Springfield", "Los", "Reno", "Kern Countyy"])
def test_find_county_unknown_returns_none(name):
    assert find_county(name) is None


def test_find_county_non_string_returns_none():
    assert find_county(None) is None  # type: ignore[arg-type]


def test_overrides_applied():
    kern = find_county("kern", overrides={"Kern": {"jurisdiction": "dependent"}})
    assert isinstance(kern, County)
    assert kern.jurisdiction == "dependent"
    assert kern.model == "classic" and kern.fips == "029"
    # The shipped data is untouched.
    assert COUNTIES["Kern"].jurisdiction == "independent"
    assert find_county("Kern").jurisdiction == "independent"


def test_overrides_for_other_counties_do_not_apply():
    assert find_county("Fresno", overrides={"Kern": {"jurisdiction": "dependent"}}).jurisdiction == "independent"


def test_overrides_wcm_and_partial_office():
    kern = find_county(
        "Kern County",
        overrides={
            "Kern": {
                "model": "wcm",
                "wcm_plan": "Kern Health Systems",
                "office": {"phone": "(661) 555-0100"},
            }
        },
    )
    assert kern.model == "wcm" and kern.wcm_plan == "Kern Health Systems"
    assert kern.office.phone == "(661) 555-0100"
    assert kern.office.name == "Kern County CCS"  # other office fields kept


def test_overrides_keyed_loosely():
    assert find_county("Kern", overrides={"kern county": {"jurisdiction": "dependent"}}).jurisdiction == "dependent"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"jurisdiction": "semi-dependent"}, "jurisdiction"),
        ({"model": "hybrid"}, "model"),
        ({"office": {"phone": 42}}, "office.phone"),
        ({"population": 900_000}, "population"),
        ({"name": "Kernville"}, "name"),
    ],
)
def test_invalid_overrides_rejected_naming_county_and_field(fields, field):
    with pytest.raises(ValueError) as excinfo:
        find_county("Kern", overrides={"Kern": fields})
    message = str(excinfo.value)
    assert "Kern" in message
    assert field in message


def test_override_that_is_not_a_mapping_rejected():
    with pytest.raises(ValueError, match="Kern"):
        find_county("Kern", overrides={"Kern": ["dependent"]})  # type: ignore[dict-item]
