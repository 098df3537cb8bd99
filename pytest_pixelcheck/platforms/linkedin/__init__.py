"""LinkedIn (Insight Tag + Conversions API). Importing this package registers the
platform; the registry imports every folder under ``platforms/`` on its own.

``LINKEDIN.rules`` takes the conversion rules a test uses (``rules.py``): LinkedIn
sends rule ids, never names, and a separate rule for each source."""

from __future__ import annotations

from .. import register
from .platform import LINKEDIN, LinkedIn
from .rules import UNDECLARED, ConversionRule

register(LINKEDIN)

__all__ = ["LINKEDIN", "UNDECLARED", "ConversionRule", "LinkedIn"]
