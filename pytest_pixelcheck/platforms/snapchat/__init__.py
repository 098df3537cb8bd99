"""Snapchat (Snap Pixel + Snap Conversions API). Importing this package registers the
platform; the registry imports every folder under ``platforms/`` on its own."""

from __future__ import annotations

from .. import register
from .platform import SNAPCHAT, Snapchat

register(SNAPCHAT)

__all__ = ["SNAPCHAT", "Snapchat"]
