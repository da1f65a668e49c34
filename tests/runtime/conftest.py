import pytest
from toy_artifact import build_toy, have_cc


@pytest.fixture(scope="session")
def toy_tar(tmp_path_factory):
    if not have_cc():
        pytest.skip("no C compiler `cc` (install build-essential)")
    return build_toy(tmp_path_factory.mktemp("toy"))
