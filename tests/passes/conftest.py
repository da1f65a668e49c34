"""Make `import tilecc` work from a source checkout without installing the package.

pyproject.toml maps folders into the `tilecc` namespace (compiler/ -> tilecc, frontends/ ->
tilecc.frontends, ...); when the package is not installed we recreate that mapping here so the
tests run against the working tree.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("frontends", "passes", "codegen", "runtime", "autotune", "targets")


def _bootstrap() -> None:
    if "tilecc" in sys.modules or importlib.util.find_spec("tilecc") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "tilecc", ROOT / "compiler" / "__init__.py",
        submodule_search_locations=[str(ROOT / "compiler")])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["tilecc"] = pkg
    if (ROOT / "compiler" / "__init__.py").exists():
        spec.loader.exec_module(pkg)
    for sub in SUBPACKAGES:
        init = ROOT / sub / "__init__.py"
        sspec = importlib.util.spec_from_file_location(
            f"tilecc.{sub}", init, submodule_search_locations=[str(ROOT / sub)])
        mod = importlib.util.module_from_spec(sspec)
        sys.modules[f"tilecc.{sub}"] = mod
        setattr(pkg, sub, mod)
        sspec.loader.exec_module(mod)


_bootstrap()
