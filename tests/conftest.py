import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("HETSKEL_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real NTU/MSR/UTD/PYSKL samples); the test is skipped with a reason when absent."""
    p = _shared_data()
    if not p.is_dir():
        pytest.skip(f"real-data folder {p} is absent (set HETSKEL_SHARED_DATA to point at it)")
    return p


@pytest.fixture
def one_thread():
    """Run the test on one torch thread (tiny MLPs and transformers run fastest single-threaded, and
    the CI box is shared), then restore the count. Use: ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def user_word_table(tmp_path_factory) -> Path:
    """A user word table (7 words x 8 dims, ``.npy``): the S modality reads it, so no open_clip text
    tower is built (that would cost more than a tiny test's whole pretraining)."""
    import numpy as np

    path = tmp_path_factory.mktemp("words") / "table.npy"
    np.save(path, np.random.default_rng(0).normal(size=(7, 8)).astype(np.float32))
    return path
