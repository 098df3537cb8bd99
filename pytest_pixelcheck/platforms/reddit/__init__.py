"""Reddit (Reddit Pixel + Conversions API). Importing this package registers the
platform; the registry imports every folder under ``platforms/`` on its own. Its
findings live in ``findings.py``, imported on first use."""

from __future__ import annotations

from .. import register
from .platform import REDDIT, Reddit

register(REDDIT)

__all__ = ["REDDIT", "Reddit"]
