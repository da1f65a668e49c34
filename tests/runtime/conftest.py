import sys
from pathlib import Path

import pytest

# The test modules import the shared toy_artifact helper by name; make that independent of
# pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def toy_tar(tmp_path_factory):
    from toy_artifact import build_toy, have_cc

    if not have_cc():
        pytest.skip("no C compiler `cc` (install build-essential)")
    return build_toy(tmp_path_factory.mktemp("toy"))
