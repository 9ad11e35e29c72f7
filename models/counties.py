"""The 58 California counties as CCS reference data, and lookups over them.

The data lives in ``reference/counties.json`` (shipped with the product; see its
``sources`` list for where each fact comes from). It is read once, at import.
Everything here is pure and deterministic, so workflows may use it; a deployment
changes a county's facts through its policy file (``overrides``), never by
editing the shipped file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError



def _reference_file() -> str:
    try:
        return str(Path(__file__).resolve().parent.parent / "reference" / "counties.json")
    except Exception:
        # Inside Temporal's workflow sandbox pathlib is off-limits (unless this module is
        # imported with ``workflow.unsafe.imports_passed_through()``, which is preferred:
        # it loads the file once per worker). Plain string math finds the same file.
        return __file__.replace("\\", "/").rsplit("/", 2)[0] + "/reference/counties.json"


REFERENCE_FILE: str = _reference_file()

Jurisdiction = Literal["independent", "dependent"]
CareModel = Literal["wcm", "classic"]


class CountyOffice(BaseModel):
    """The county's CCS office. Phone and website are null unless a source gave them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    phone: str | None = None
    website: str | None = None


class County(BaseModel):
    """One county: who decides medical eligibility, and who manages CCS cases.

    ``jurisdiction``: in an *independent* county the county's medical consultant makes
    the medical determination; in a *dependent* county the State CCS office does.
    ``jurisdiction_source`` quotes the page that confirms the status; None means it is
    inferred from the population rule of HSC 123850 (over 200,000 people: independent).
    ``model``: in a Whole Child Model (``wcm``) county the Medi-Cal plan ``wcm_plan``
    manages Medi-Cal members' CCS care; elsewhere (``classic``) the county does.
    ``kaiser_wcm``: Kaiser Permanente also runs WCM there for its own Medi-Cal members.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    fips: str
    jurisdiction: Jurisdiction
    jurisdiction_source: str | None = None
    model: CareModel
    wcm_plan: str | None = None
    kaiser_wcm: bool = False
    office: CountyOffice

    @property
    def status_basis(self) -> str:
        return "sourced" if self.jurisdiction_source else "inferred from population (HSC 123850)"


def _load() -> dict[str, County]:
    with open(REFERENCE_FILE, encoding="utf-8") as fh:
        raw = json.load(fh)
    counties = [County.model_validate(entry) for entry in raw["counties"]]
    return {county.name: county for county in counties}


COUNTIES: dict[str, County] = _load()

_BY_KEY: dict[str, str] = {name.casefold(): name for name in COUNTIES}


def _canonical(name: str) -> str | None:
    """The canonical county name for ``name`` ("kern", " Kern County ", "KERN"), or None."""
    key = " ".join(name.split()).casefold()
    if key.endswith(" county"):
        key = key[: -len(" county")].rstrip()
    return _BY_KEY.get(key)


def _apply_overrides(county: County, fields: dict[str, Any]) -> County:
    """``county`` with the deployment's field overrides applied and validated."""
    if not isinstance(fields, dict):
        raise ValueError(f"county override for {county.name}: expected a mapping of fields, got {type(fields).__name__}")
    unknown = sorted(set(fields) - set(County.model_fields))
    if unknown:
        raise ValueError(f"county override for {county.name}: unknown field(s) {', '.join(unknown)}")
    update = dict(fields)
    if "name" in update and update["name"] != county.name:
        raise ValueError(f"county override for {county.name}: field name cannot be changed")
    if isinstance(update.get("office"), dict):
        # Partial office overrides ({"office": {"phone": "..."}}) keep the other office fields.
        update["office"] = {**county.office.model_dump(), **update["office"]}
    try:
        return County.model_validate({**county.model_dump(), **update})
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"county override for {county.name}: {problems}") from None


def find_county(name: str, overrides: dict[str, dict] | None = None) -> County | None:
    """The county called ``name`` (any case, surrounding spaces, optional trailing "County").

    ``overrides`` maps canonical county names to field overrides from the deployment's
    policy file, e.g. ``{"Kern": {"jurisdiction": "dependent"}}``. An override with an
    invalid value raises ValueError naming the county and the field. Returns None when
    no county has that name.
    """
    if not isinstance(name, str):
        return None
    canonical = _canonical(name)
    if canonical is None:
        return None
    county = COUNTIES[canonical]
    if overrides:
        fields = overrides.get(canonical)
        if fields is None:
            # Tolerate a policy file keyed "Kern County" or "kern".
            fields = next((v for k, v in overrides.items() if _canonical(k) == canonical), None)
        if fields:
            county = _apply_overrides(county, fields)
    return county


# Statuses the shipped data changed once a source was found: running cases opened before
# the change keep the old one (see ChildCaseWorkflow._open, patch "county-status-sourced").
PREVIOUS_JURISDICTION: dict[str, Jurisdiction] = {"Napa": "dependent"}


def county_names() -> list[str]:
    """All 58 canonical county names, sorted."""
    return sorted(COUNTIES)


__all__ = ["COUNTIES", "PREVIOUS_JURISDICTION", "County", "CountyOffice", "county_names", "find_county"]
