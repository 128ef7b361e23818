"""Every test run caches into a folder of its own, never the user's cache."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    before = os.environ.get("AUDITDM_CACHE")
    os.environ["AUDITDM_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # subprocesses inherit it
    yield
    if before is None:
        del os.environ["AUDITDM_CACHE"]
    else:
        os.environ["AUDITDM_CACHE"] = before
