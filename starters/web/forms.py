"""HTML forms generated from the pydantic action models: one definition per action.

A model's fields become inputs named by their path (``finances.family_agi``,
``request.travellers.0.relationship``); a submitted form becomes the nested dict the
model validates; a validation error's location is the name of the input it belongs to.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

# Filled in by the service from the signed-in person, never typed by them.
SERVER_FIELDS = {"actor", "referral_id"}
# How many rows a list of sub-forms offers (empty rows are ignored).
LIST_ROWS = {"travellers": 4, "conditions": 3, "items": 5}
DEFAULT_ROWS = 3


@dataclass
class Field_:
    name: str  # the input's name: the path of the field
    label: str
    kind: str  # text, textarea, number, date, select, checkbox
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str | None = None
    value: str = ""
    error: str | None = None
    step: str | None = None
    form: str = ""  # the form's name: a page with many forms keeps every id unique

    @property
    def id(self) -> str:
        return "-".join(p for p in ("f", self.form, self.name.replace(".", "-")) if p)


@dataclass
class Group:
    """A nested model (or one row of a list): a fieldset with a legend."""

    legend: str
    items: list[Field_ | Group]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``X | None``, and whether None is allowed."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), len(args) < len(typing.get_args(annotation))
    return annotation, False


# Labels in a case manager's words where the field name is not.
LABELS = {"family_agi": "Family AGI (adjusted gross income)", "full_scope_medi_cal": "Full-scope Medi-Cal",
          "medi_cal": "Medi-Cal", "full_scope": "Full-scope Medi-Cal", "cin": "Medi-Cal number (CIN)",
          "icd10": "ICD-10-CM code", "condition_id": "Condition (C1, C2, ...)", "task_id": "Task (T1, T2, ...)",
          "request_id": "Request", "round_trip_miles": "Round-trip miles", "mtp": "MTP"}


def _label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def _hint(info: FieldInfo, kind: str) -> str | None:
    if info.description:
        return info.description
    for m in info.metadata:
        if kind == "number" and getattr(m, "le", None) is not None:
            return f"up to {m.le}"
    return None


def fields_for(model: type[BaseModel], prefix: str = "", skip: set[str] = SERVER_FIELDS) -> list[Field_ | Group]:
    items: list[Field_ | Group] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        path = f"{prefix}{name}"
        annotation, optional = _unwrap(info.annotation)
        required = info.is_required() and not optional
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            legend = f"{_label(name)} ({info.description})" if info.description else _label(name)
            items.append(Group(legend, fields_for(annotation, f"{path}.", set())))
            continue
        if origin is list:
            (inner,) = typing.get_args(annotation)
            rows = LIST_ROWS.get(name, DEFAULT_ROWS)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                items.append(Group(_label(name), [
                    Group(f"{_label(name)} {i + 1}", fields_for(inner, f"{path}.{i}.", set())) for i in range(rows)]))
            continue
        items.append(_scalar(path, name, annotation, info, required))
    return items


def _scalar(path: str, name: str, annotation: Any, info: FieldInfo, required: bool) -> Field_:
    label = _label(name)
    if typing.get_origin(annotation) is Literal:
        options = [(str(v), str(v).replace("_", " ")) for v in typing.get_args(annotation)]
        default = info.default if isinstance(info.default, str) else ""
        if not default:  # no silent choice: a person picks one
            options.insert(0, ("", "(choose)"))
        return Field_(path, label, "select", required, options, info.description, default)
    if annotation is bool:
        if required:  # a yes/no a person must answer: no silent default
            return Field_(path, label, "select", True, [("", "(choose)"), ("true", "yes"), ("false", "no")],
                          info.description)
        return Field_(path, label, "checkbox", False, hint=info.description,
                      value="true" if info.default else "")
    if annotation is date:
        return Field_(path, label, "date", required, hint=info.description or (
            None if required else "leave empty for today"))
    if annotation in (int, Decimal) or (isinstance(annotation, type) and issubclass(annotation, (int, Decimal))):
        step = "1" if annotation is int else "0.01"
        default = "" if info.default in (None, Ellipsis) or required else str(info.default)
        if default in ("0", "0.00"):
            default = ""
        return Field_(path, label, "number", required, hint=_hint(info, "number"), step=step, value=default)
    long = any((getattr(m, "max_length", 0) or 0) >= 500 for m in info.metadata)
    return Field_(path, label, "textarea" if long else "text", required, hint=info.description)


def walk(items: list[Field_ | Group]):
    for item in items:
        if isinstance(item, Group):
            yield from walk(item.items)
        else:
            yield item


def fill(items: list[Field_ | Group], values: dict[str, str], errors: dict[str, str],
         form: str = "") -> list[Field_ | Group]:
    """Put what the person typed back into the form, and each error beside its field."""
    for f in walk(items):
        f.form = form
        if f.name in values:
            f.value = values[f.name]
        elif f.kind == "checkbox" and values:
            f.value = ""
        f.error = errors.get(f.name)
    return items


def unmatched(items: list[Field_ | Group], errors: dict[str, str]) -> dict[str, str]:
    """Errors that belong to no single field (a rule across fields): shown above the form."""
    names = {f.name for f in walk(items)}
    return {k: v for k, v in errors.items() if k not in names}


def parse(form: dict[str, str]) -> dict[str, Any]:
    """Flat ``a.b.0.c`` names to nested data; empty inputs are left out (defaults apply);
    list rows with nothing typed in them are dropped."""
    data: dict[str, Any] = {}
    for name, raw in form.items():
        value = raw.strip() if isinstance(raw, str) else raw
        if value == "" or name.startswith("_"):
            continue
        node = data
        parts = name.split(".")
        for part, nxt in zip(parts, parts[1:]):
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(data)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def error_fields(e: ValidationError) -> dict[str, str]:
    """Validation errors keyed by input name; a rule across fields goes under its model's path."""
    out: dict[str, str] = {}
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        out.setdefault(loc or "(form)", msg)
    return out
