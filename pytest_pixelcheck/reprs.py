"""Failed assertions on pixelcheck objects, explained without tokens or customer data.

Every pixelcheck class has a redacting ``__repr__``, which covers most of what pytest
prints. One path goes around it: for ``a == b`` on two dataclasses of one type,
pytest's own explanation drills into each differing field and prints its raw value
(a URL with ``access_token=``, the headers, the body, ``user_data``). The plugin's
``pytest_assertrepr_compare`` hands every comparison that involves a pixelcheck
object to ``explain_comparison`` instead, which says the same things safely.
"""

from __future__ import annotations

import dataclasses
import difflib
import pprint
from typing import Any

from .redact import redact_headers, scrub_secrets

_PACKAGE = __name__.rpartition(".")[0]
_DEPTH = 3
_SCAN = 1000  # items of a container looked at: a capture list can be long
_HEADER_FIELDS = {"headers", "request_headers", "response_headers"}
_BODY_FIELDS = {"body", "request_body", "response_body"}
_CUSTOMER_FIELDS = {"user_data"}
_SHORT = 240


def is_pixelcheck_object(value: Any, depth: int = 0) -> bool:
    """A pixelcheck object, or a list/tuple/set/dict holding one (a few levels deep)."""
    module = type(value).__module__ or ""
    if module == _PACKAGE or module.startswith(_PACKAGE + "."):
        return True
    if depth >= _DEPTH:
        return False
    if isinstance(value, dict):
        items = list(value.items())[:_SCAN]
        return any(is_pixelcheck_object(k, depth + 1) or is_pixelcheck_object(v, depth + 1)
                   for k, v in items)
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_pixelcheck_object(v, depth + 1) for v in list(value)[:_SCAN])
    return False


def secrets_of(value: Any, depth: int = 0) -> set[str]:
    """Structural credentials (token params, auth headers) of every request in ``value``."""
    found: set[str] = set()
    method = getattr(value, "secrets", None)
    if callable(method) and is_pixelcheck_object(value):
        try:
            found |= set(method())
        except Exception:  # a half-built object must not break the explanation
            pass
    if depth >= _DEPTH:
        return found
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            found |= secrets_of(getattr(value, field.name, None), depth + 1)
    elif isinstance(value, dict):
        for item in list(value.values())[:_SCAN]:
            found |= secrets_of(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in list(value)[:_SCAN]:
            found |= secrets_of(item, depth + 1)
    return found


def _field_text(name: str, value: Any) -> str:
    """One field's value as the explanation shows it: credential headers masked, bodies
    by size, customer data masked; everything else by its (redacting) repr."""
    if name in _HEADER_FIELDS and isinstance(value, list):
        pairs = [(str(h[0]), str(h[1])) for h in value if isinstance(h, (tuple, list))
                 and len(h) == 2]
        return repr(redact_headers(pairs))
    if name in _BODY_FIELDS and isinstance(value, (bytes, str)):
        return f"<{len(value)} bytes>"
    if name in _CUSTOMER_FIELDS and isinstance(value, dict):
        from .pii import mask  # pii imports the findings machinery; only needed here

        return "{" + ", ".join(f"{k!r}: {mask(v, str(k))!r}" for k, v in value.items()) + "}"
    return repr(value)


def _short(text: str, verbose: int) -> str:
    if verbose >= 2 or len(text) <= _SHORT:
        return text
    return text[:_SHORT - 1] + "…"


def explain_comparison(op: str, left: Any, right: Any, verbose: int = 0) -> list[str]:
    """pytest explanation lines for ``left op right`` (the first line is the summary)."""
    secrets = secrets_of(left) | secrets_of(right)

    def safe(text: str) -> str:
        return scrub_secrets(text, secrets)

    # scrubbed before shortened: a token cut in two would escape the patterns
    lines = [f"{_short(safe(repr(left)), verbose)} {op} {_short(safe(repr(right)), verbose)}"]
    if op != "==":
        return lines
    if type(left) is type(right) and dataclasses.is_dataclass(left) \
            and not isinstance(left, type):
        differing = [f.name for f in dataclasses.fields(left) if f.compare
                     and getattr(left, f.name) != getattr(right, f.name)]
        if differing:
            lines += ["", "Differing attributes: " + ", ".join(differing)]
            lines += [f"  {name}: {safe(_field_text(name, getattr(left, name)))} != "
                      f"{safe(_field_text(name, getattr(right, name)))}" for name in differing]
        return lines
    if isinstance(left, (list, tuple, dict, set, frozenset)) \
            and isinstance(right, (list, tuple, dict, set, frozenset)):
        if verbose < 1:
            return [*lines, "", "Use -v to get more diff"]
        # pprint uses the redacting reprs: every pixelcheck dataclass has repr=False.
        # Scrubbed line by line: scrub flattens (and cuts) text of several lines.
        left_lines = [safe(line) for line in pprint.pformat(left, width=76).splitlines()]
        right_lines = [safe(line) for line in pprint.pformat(right, width=76).splitlines()]
        lines += ["", "Full diff:"]
        lines += [line.rstrip() for line in difflib.ndiff(right_lines, left_lines)]
    return lines
