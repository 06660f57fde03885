"""Reward tests run torch on one thread (a second OpenMP thread on the shared 2-core
machine made small steps ~35x slower, measured 19 ms vs 670 ms per step)."""

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
