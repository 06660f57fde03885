"""Runtime tests run torch on one thread (as the learner does when actors share the
machine): on a shared 2-core box a second OpenMP thread makes tiny updates far slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
