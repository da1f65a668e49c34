"""Imports every op family module (each registers its ops on import)."""

from . import elementwise, nn, reduce, transform  # noqa: F401, I001
from . import index, logic  # noqa: F401
from . import image, norm, recurrent  # noqa: F401
from . import quant  # noqa: F401
from . import extra  # noqa: F401
from . import nchwc  # noqa: F401
from . import pool, sampling  # noqa: F401
from . import quant_dw, quant_pool  # noqa: F401
