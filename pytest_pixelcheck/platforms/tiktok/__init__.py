"""TikTok (Pixel + Events API). Importing this package registers the platform; the
registry imports every folder under ``platforms/`` on its own."""

from __future__ import annotations

from .. import register
from .platform import TIKTOK, TikTok

register(TIKTOK)

__all__ = ["TIKTOK", "TikTok"]
