"""Imports every TE op family module so their registrations run."""

from . import elementwise, nn, reduce, transform  # noqa: F401
from . import image, norm, recurrent  # noqa: F401,E402  (NN/transformer/recurrent ops)
