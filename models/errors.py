"""The error every entry point shows a person (``ccs``, the HTTP API, the web app, ``ccs up``)."""

from __future__ import annotations


class CcsError(Exception):
    """An error a person can act on: a message, and what was wrong field by field."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_json(self) -> dict:
        return {"error": self.message, "fields": self.fields}
