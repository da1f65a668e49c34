"""Imports every op family module (each registers its ops on import)."""

from . import elementwise, nn, reduce, transform  # noqa: F401
