"""County reference data: each status sourced (with its page) or inferred from the
population rule (HSC 123850), the Kaiser Permanente WCM counties (DHCS CCS Whole Child
Model page), and `ccs counties` showing both."""

from __future__ import annotations

import json

import pytest

from models.counties import COUNTIES, find_county
from starters.cli import main

# DHCS, https://www.dhcs.ca.gov/services/ccs/Pages/CCSWholeChildModel.aspx (since 2024-01-01).
KAISER_WCM = {"Marin", "Napa", "Orange", "San Mateo", "Santa Cruz", "Solano", "Sonoma", "Yolo"}


def test_napa_is_independent_per_its_own_faq():
    napa = COUNTIES["Napa"]
    assert napa.jurisdiction == "independent"
    assert "countyofnapa.org/Faq.aspx?QID=217" in napa.jurisdiction_source
    assert napa.status_basis == "sourced"


def test_every_status_is_sourced_with_a_page_or_inferred():
    sourced = {c.name for c in COUNTIES.values() if c.jurisdiction_source}
    assert sourced == {"Lake", "Yolo", "San Diego", "Santa Barbara", "Napa"}
    for name in sourced:
        assert "http" in COUNTIES[name].jurisdiction_source, name
    assert COUNTIES["Lake"].jurisdiction == "dependent"
    assert COUNTIES["Kern"].status_basis.startswith("inferred")


def test_kaiser_runs_wcm_in_eight_counties():
    assert {c.name for c in COUNTIES.values() if c.kaiser_wcm} == KAISER_WCM
    assert all(COUNTIES[n].model == "wcm" for n in KAISER_WCM)


def test_ccs_counties_json_shows_status_and_source(capsys, monkeypatch):
    monkeypatch.delenv("CCS_POLICY", raising=False)
    assert main(["counties", "--json"]) == 0
    rows = {c["name"]: c for c in json.loads(capsys.readouterr().out)["counties"]}
    assert len(rows) == 58
    assert rows["Napa"]["status"] == "sourced" and rows["Napa"]["medical_determination"] == "county"
    assert rows["Napa"]["wcm_plans"] == ["Partnership HealthPlan of California", "Kaiser Permanente"]
    assert rows["Alpine"]["status"] == "inferred" and rows["Alpine"]["medical_determination"] == "state"
    assert "HSC 123850" in rows["Alpine"]["source"]


def test_ccs_counties_readable_one_county_with_policy_override(capsys, monkeypatch, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[counties.Kern]\njurisdiction = "dependent"\n')
    monkeypatch.setenv("CCS_POLICY", str(policy))
    assert main(["counties", "kern county"]) == 0
    out = capsys.readouterr().out
    assert "Kern" in out and "dependent" in out and "inferred" in out


def test_ccs_counties_unknown_county_is_refused(capsys, monkeypatch):
    monkeypatch.delenv("CCS_POLICY", raising=False)
    assert main(["counties", "Springfield"]) == 2
    assert "unknown California county 'Springfield'" in capsys.readouterr().err


@pytest.mark.parametrize("value", [True, False])
def test_kaiser_flag_overridable(value):
    assert find_county("Kern", {"Kern": {"kaiser_wcm": value}}).kaiser_wcm is value
