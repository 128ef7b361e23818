"""Every test run caches into a folder of its own, never the user's cache; the tiny diffusers
pipelines are built once per session for every test that takes them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Folders of a tiny text-to-image pipeline and a tiny editing pipeline (``tiny_pipelines``)."""
    pytest.importorskip("diffusers")
    from tiny_pipelines import build_pipelines

    return build_pipelines(tmp_path_factory.mktemp("pipelines"))
