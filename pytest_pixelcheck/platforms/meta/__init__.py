"""Meta: the browser Pixel (``fbq``, ``/tr`` hits) and the Conversions API.

Importing the package registers the platform.
"""

from .platform import META, Meta, graph_error

__all__ = ["META", "Meta", "graph_error"]
