"""How deep pixelcheck walks nested request data, and what it does past that.

Every walk over request data (masking, scrubbing, comparing, printing) recurses; a
structure nested past ``MAX_JSON_DEPTH`` is refused or cut before any of them sees it,
so none can exhaust Python's recursion limit and abort a session.
"""

from __future__ import annotations

from typing import Any

#: How deep pixelcheck reads nested JSON in a request. Real payloads nest about five
#: levels (data, event, custom_data, contents, item); anything past this is refused
#: as ``payload-too-deep`` before any code walks it, so no walk of request data can
#: exhaust Python's recursion limit.
MAX_JSON_DEPTH = 32


def too_deep_reason(depth: int | None) -> str:
    """Why data nested ``depth`` levels (None: too deep to count) was not read."""
    found = f"{depth} levels" if depth is not None else "too deep for Python's parser"
    return f"JSON {TOO_DEEP_MARK} ({found}); pixelcheck reads at most {MAX_JSON_DEPTH} levels"


#: the words every too-deep reason carries, so the diagnosis can tell it from other
#: unreadable bodies whatever prefix a platform put in front of it
TOO_DEEP_MARK = "nested deeper than pixelcheck reads"


def is_too_deep(reason: str | None) -> bool:
    return bool(reason) and TOO_DEEP_MARK in str(reason)


def nesting_depth(value: Any, stop_after: int | None = None) -> int:
    """Levels of lists and dicts in ``value`` (a scalar: 0), without recursion;
    ``stop_after``: give up counting once past it."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if stop_after is not None and deepest > stop_after:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest




def cut_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> tuple[Any, int]:
    """(``value`` with containers nested past ``limit`` replaced by a short text, its
    depth); ``value`` itself when it is within the limit."""
    depth = nesting_depth(value, stop_after=limit)
    if depth <= limit:
        return value, depth
    full_depth = nesting_depth(value)

    def cut(item: Any, level: int) -> Any:  # recursion bounded by ``limit``
        if isinstance(item, (dict, list, tuple)) and level >= limit:
            return TOO_DEEP_TEXT
        if isinstance(item, dict):
            return {k: cut(v, level + 1) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [cut(v, level + 1) for v in item]
        return item

    return cut(value, 0), full_depth


TOO_DEEP_TEXT = f"<nested deeper than {MAX_JSON_DEPTH} levels: not read>"
