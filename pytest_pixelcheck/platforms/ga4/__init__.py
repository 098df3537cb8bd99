"""Google Analytics 4 (gtag.js + Measurement Protocol). Importing the package registers
the platform; its findings live in ``findings.py``, imported on first use."""

from __future__ import annotations

from .. import register
from .pii_rules import digest_bytes
from .platform import GA4

GA4_PLATFORM = register(GA4())

__all__ = ["GA4", "GA4_PLATFORM", "digest_bytes"]
