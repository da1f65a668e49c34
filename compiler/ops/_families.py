"""Imports every op family module (each registers its ops on import)."""

from . import elementwise, image, nn, norm, recurrent, reduce, transform  # noqa: F401
