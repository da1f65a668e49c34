"""The C thread pool on its own (fixtures/pool_stress.c), and the default thread count."""

import shutil
import subprocess

import pytest
from toy_artifact import FIXTURES, have_cc

from tilecc.codegen.link import runtime_source_dir

pytestmark = pytest.mark.skipif(not have_cc(), reason="no C compiler `cc`")


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    exe = tmp_path_factory.mktemp("pool") / "pool_stress"
    rt = runtime_source_dir()
    subprocess.run(["cc", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I", str(rt),
                    str(FIXTURES / "pool_stress.c"), str(rt / "tilecc_runtime.c"), "-o", str(exe),
                    "-lpthread"], check=True)
    return exe


def test_pool_stress(stress):
    proc = subprocess.run([str(stress)], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_pool_stress_on_one_core(stress):
    """Oversubscribed (8 threads on 1 core): must still finish, i.e. waiters sleep."""
    proc = subprocess.run(["taskset", "-c", "0", str(stress)], check=False,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_runtime_compiles_cleanly(tmp_path):
    rt = runtime_source_dir()
    for std in ("c11", "gnu11"):
        subprocess.run(["cc", f"-std={std}", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror",
                        "-c", str(rt / "tilecc_runtime.c"), "-o", str(tmp_path / "rt.o")],
                       check=True)
