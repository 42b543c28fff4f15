"""Shared test paths and helpers."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import pytest

# The cost cache of the tests lives apart from the user's (~/.cache/stream).
os.environ.setdefault("STREAM_CACHE_DIR", tempfile.mkdtemp(prefix="stream-test-cache-"))

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO / "inputs"
PEERS = REPO.parent / "shared" / "peer-inputs" / "stream"


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a dedented file in tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


def peer_files(pattern: str) -> list[Path]:
    assert PEERS.is_dir(), f"peer inputs not found at {PEERS} (CI clones shared/ beside the repo)"
    files = sorted(PEERS.glob(pattern))
    assert files, f"no peer files match {pattern}"
    return files
