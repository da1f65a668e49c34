"""Imports every TE op family module so their registrations run."""

from . import elementwise, gpu, image, nn, norm, recurrent, reduce, transform  # noqa: F401
