"""Imports every TE op family module so their registrations run."""

from . import elementwise, image, nn, norm, recurrent, reduce, transform  # noqa: F401
