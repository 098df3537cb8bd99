"""JSON Schema validation of server API payloads, with readable field paths.

Schemas are data files in each platform's folder; a platform names the one its
request bodies must satisfy. Errors come back as (path, reason) pairs
such as ``data[0].user_data.client_user_agent: missing``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError


@dataclass(frozen=True)
class Violation:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


@cache
def validator(schema: Path) -> Draft202012Validator:
    """The validator of a JSON Schema file (each platform folder keeps its own)."""
    text = schema.read_text(encoding="utf-8")
    loaded = json.loads(text)
    Draft202012Validator.check_schema(loaded)
    return Draft202012Validator(loaded)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(error: ValidationError) -> tuple[str, str]:
    path = _path(error.absolute_path)
    kind = error.validator
    if kind == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [p for p in error.validator_value if p not in instance]
        name = missing[0] if missing else "?"
        return (f"{path}.{name}" if path else name), "missing (required)"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return path, f"must be {expected}, got {type(error.instance).__name__} " \
                     f"{_short(error.instance)}"
    if kind == "enum":
        return path, f"{_short(error.instance)} is not one of {', '.join(error.validator_value)}"
    if kind == "maxItems":
        return path, f"has {len(error.instance)} items, at most {error.validator_value} allowed"
    if kind == "minItems":
        return path, f"has {len(error.instance)} items, at least {error.validator_value} needed"
    if kind == "minProperties":
        return path, "is empty; send at least one customer information parameter"
    if kind == "pattern":
        return path, f"{_short(error.instance)} does not match {error.validator_value}"
    return path, error.message


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate(schema: Path, payload: Any, *, limit: int = 20) -> list[Violation]:
    """Every violation (up to ``limit``), ordered by path for stable messages."""
    errors = sorted(validator(schema).iter_errors(payload),
                    key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, str(p))
                                   for p in e.absolute_path])
    seen: dict[Violation, None] = {}
    for error in errors:
        # oneOf/anyOf/if-then report on their sub-schemas; the leaves read better
        leaves = _leaves(error)
        for leaf in leaves:
            seen.setdefault(Violation(*_describe(leaf)))
        if len(seen) >= limit:
            break
    return list(seen)[:limit]


def _leaves(error: ValidationError) -> list[ValidationError]:
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.relative_path)))
        return [best]
    return [error]
