"""Pinterest (Pinterest Tag + Conversions API v5). Importing this package registers the
platform; the registry imports every folder under ``platforms/`` on its own."""

from __future__ import annotations

from .. import register
from .platform import PINTEREST, Pinterest

register(PINTEREST)

__all__ = ["PINTEREST", "Pinterest"]
