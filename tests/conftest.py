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


# The field's own files live beside the repository (CI clones ../shared there). A clone of
# the repository alone skips the tests that read them, saying why; under CI their absence
# is a broken set-up, which test_peer_inputs_present reports.
needs_peers = pytest.mark.skipif(not PEERS.is_dir(), reason=f"peer inputs not found at {PEERS}")


def peer_files(pattern: str) -> list[Path]:
    """The peer files matching ``pattern``; none when the folder is absent (the tests that
    take them are then skipped)."""
    if not PEERS.is_dir():
        return []
    files = sorted(PEERS.glob(pattern))
    assert files, f"no peer files match {pattern}"
    return files


def save_graph(graph, path: Path, opset: int = 17) -> Path:
    """Write an ONNX graph as a model of the default domain at ``opset``; the path."""
    import onnx
    from onnx import helper

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path
