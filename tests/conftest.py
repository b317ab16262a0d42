import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from federation_harness import Federation  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The suite's own processes already fill the cores; more threads per process oversubscribe them."""
    torch.set_num_threads(1)


@pytest.fixture
def federation(tmp_path):
    """A factory for a loopback federation of processes; all are killed after the test."""
    made = []

    def make(**settings) -> Federation:
        fed = Federation(tmp_path, **settings)
        made.append(fed)
        return fed

    yield make
    for fed in made:
        fed.close()
