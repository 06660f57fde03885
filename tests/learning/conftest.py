"""Learning tests run torch on one thread: on a shared 2-core machine OpenMP barriers
of a second thread made tiny updates ~40x slower (measured 17 ms vs 670 ms)."""

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
