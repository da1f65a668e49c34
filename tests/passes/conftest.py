"""Make `import tilecc` resolve to this checkout, installed or not.

pyproject.toml maps folders into the `tilecc` namespace (compiler/ -> tilecc, frontends/ ->
tilecc.frontends, ...). We recreate that mapping for the working tree so the tests exercise
this checkout even when another checkout is pip-installed in editable mode.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("frontends", "passes", "codegen", "runtime", "autotune", "targets")


def _bootstrap() -> None:
    current = sys.modules.get("tilecc")
    if current is not None and str(ROOT / "compiler") in list(getattr(current, "__path__", [])):
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
