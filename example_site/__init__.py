"""A small web shop with Meta Pixel + Conversions API tracking and switchable faults.

It is the system under test of pytest-pixelcheck's own tests and examples.
"""

from .faults import FAULT_COOKIE, FAULT_HEADER, FAULTS, ActiveFaults
from .launch import SiteProcess
from .server import PRODUCTS, ShopConfig, ShopServer

__all__ = [
    "FAULTS",
    "FAULT_COOKIE",
    "FAULT_HEADER",
    "PRODUCTS",
    "ActiveFaults",
    "ShopConfig",
    "ShopServer",
    "SiteProcess",
]
