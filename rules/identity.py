"""One child, one case: which case a referral belongs to, as pure rules.

A child is located by keys, each a keyed hash (HMAC-SHA256 with the case-ID secret) so no
name, date of birth or Medi-Cal number (CIN) is ever stored or compared in plaintext:

- ``cin``: the Medi-Cal CIN, which identifies the child whatever the spelling of the name;
- ``name_dob``: the folded first and last name with the date of birth;
- ``last_dob``: the folded last name with the date of birth (find-a-child only; many cases).

``resolve`` decides from what the identity index holds for those keys; the index
(``starters/identity.py``) loads the matches and claims the keys it returns.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from anyascii import anyascii

KeyKind = Literal["cin", "name_dob", "last_dob"]
Outcome = Literal["new_case", "same_cin", "same_name_dob", "cin_added", "possible_duplicate"]


class IdentityRefused(ValueError):
    """The referral cannot be placed on a case safely; the message says what to check.
    It never names or describes another child."""


def fold(name: str) -> str:
    """A name as the index compares it: transliterated to ASCII (accents, other scripts),
    case-folded, without spaces, hyphens or apostrophes, so "María García-López",
    "MARIA GARCIA LOPEZ" and "maria garcialopez" fold alike."""
    return "".join(ch for ch in anyascii(name).casefold() if ch.isalnum())


def _hash(secret: bytes, *parts: str) -> str:
    return hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChildKeys:
    """The keyed hashes of one child's identifiers, as the index stores them."""

    name_dob: str
    last_dob: str
    dob: str  # kept beside every key, to tell a reused CIN from the same child
    cin: str | None = None

    def claims(self) -> dict[KeyKind, str]:
        keys: dict[KeyKind, str] = {"name_dob": self.name_dob, "last_dob": self.last_dob}
        return {"cin": self.cin, **keys} if self.cin else keys


def child_keys(secret: bytes, *, first_name: str, last_name: str, date_of_birth: date,
               cin: str | None = None) -> ChildKeys:
    dob = date_of_birth.isoformat()
    return ChildKeys(
        name_dob=_hash(secret, "name_dob", fold(first_name), fold(last_name), dob),
        last_dob=_hash(secret, "last_dob", fold(last_name), dob),
        dob=_hash(secret, "dob", dob),
        cin=_hash(secret, "cin", cin.strip().upper()) if cin else None,
    )


def name_keys(secret: bytes, *, last_name: str, date_of_birth: date, first_name: str | None = None) -> tuple[KeyKind, str]:
    """The key a find-a-child search by name uses: full name + DOB, or last name + DOB."""
    dob = date_of_birth.isoformat()
    if first_name:
        return "name_dob", _hash(secret, "name_dob", fold(first_name), fold(last_name), dob)
    return "last_dob", _hash(secret, "last_dob", fold(last_name), dob)


def cin_key(secret: bytes, cin: str) -> str:
    return _hash(secret, "cin", cin.strip().upper())


def new_case_id(keys: ChildKeys) -> str:
    """The ID a new case gets: from the CIN when there is one, else from the name and DOB.
    Derived, not random, so concurrent referrals of one new child compute the same ID."""
    basis = f"cin:{keys.cin}" if keys.cin else f"name_dob:{keys.name_dob}"
    return "case-" + hashlib.sha256(basis.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class IndexedCase:
    """What the index knows of a case that one of the referral's keys matched."""

    case_id: str
    dob: str
    has_cin: bool


@dataclass(frozen=True)
class Resolution:
    outcome: Outcome
    case_id: str
    claims: dict[KeyKind, str]  # keys to add to the case's index (existing ones stay)
    # Other open cases with the same folded name and DOB but another CIN: a supervisor decides.
    possible_duplicate_of: tuple[str, ...] = field(default=())


def resolve(keys: ChildKeys, cin_case: IndexedCase | None, name_cases: list[IndexedCase]) -> Resolution:
    """The case this referral belongs to.

    ``cin_case``: the case holding the referral's CIN, if any; ``name_cases``: the cases
    holding its folded name + DOB key. Raises IdentityRefused when placing it would risk
    mixing two children's records.
    """
    if keys.cin and cin_case is not None:
        if cin_case.dob != keys.dob:
            raise IdentityRefused(
                "this Medi-Cal number (CIN) is already on the case of a child with a different date of "
                "birth: check the CIN and the date of birth against the child's Medi-Cal card")
        return Resolution("same_cin", cin_case.case_id, keys.claims(),
                          _others_with_cin(name_cases, cin_case.case_id))
    if keys.cin:
        without_cin = [c for c in name_cases if not c.has_cin]
        if len(without_cin) == 1:
            # The child's case was opened without a CIN: this referral brings it.
            case = without_cin[0].case_id
            return Resolution("cin_added", case, keys.claims(), _others_with_cin(name_cases, case))
        if len(without_cin) > 1:
            raise _ambiguous()
        case = new_case_id(keys)
        others = _others_with_cin(name_cases, case)
        return Resolution("possible_duplicate" if others else "new_case", case, keys.claims(), others)
    if len(name_cases) > 1:
        raise _ambiguous()
    if name_cases:
        case = name_cases[0].case_id
        return Resolution("same_name_dob", case, keys.claims())
    return Resolution("new_case", new_case_id(keys), keys.claims())


def _others_with_cin(cases: list[IndexedCase], case_id: str) -> tuple[str, ...]:
    return tuple(sorted({c.case_id for c in cases if c.case_id != case_id and c.has_cin}))


def _ambiguous() -> IdentityRefused:
    return IdentityRefused(
        "more than one child with this name and date of birth has a case: add the child's "
        "Medi-Cal number (CIN) to the referral, or ask a supervisor to find the right case")
