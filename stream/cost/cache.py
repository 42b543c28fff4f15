"""On-disk cache of per-core costs: JSON files, one per hardware, safe to share.

Layout::

    <cache dir>/costs-<hardware hash>.json
    {"format": 1,
     "hardware": "<hardware hash>",
     "entries": {"<model version>/<sha256 of the key>": {"key": "<key text>", "value": {...}}}}

* the cache dir is the ``cache_dir`` given to :class:`stream.cost.CostModel`, else
  ``$STREAM_CACHE_DIR``, else ``~/.cache/stream``;
* the hardware hash is a hash of the signatures of all its compute cores (ids and names
  left out), so a renamed copy of a system file shares its file;
* the model version names the cost model and its implementation version, so entries of an
  older model are never read; the key text is stored beside each value and compared on
  lookup, so a hash collision reads as a miss;
* values are plain JSON numbers, strings and lists (never pickle): Python's ``json`` writes
  floats with ``repr``, so a value read back equals the one written.

Writes are atomic (a temporary file in the same directory, then ``os.replace``) and merge
with whatever another process wrote in between. A file that cannot be read or parsed, or
has another format, is ignored with a warning (and replaced at the next save); a cache
directory that cannot be written to costs a warning, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

FORMAT = 1


def default_cache_dir() -> Path:
    env = os.environ.get("STREAM_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stream"


def digest(text: str, length: int = 64) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class DiskCache:
    """Entries of one hardware: ``get``/``put`` by (model version, key text); ``save`` to write."""

    def __init__(self, directory: str | os.PathLike, hardware_hash: str):
        self.directory = Path(directory).expanduser()
        self.hardware_hash = hardware_hash
        self.path = self.directory / f"costs-{hardware_hash}.json"
        self._entries: dict[str, dict] = self._read()
        self._new: dict[str, dict] = {}
        self.loaded = len(self._entries)

    @staticmethod
    def entry_id(model_version: str, key: str) -> str:
        return f"{model_version}/{digest(key)}"

    def get(self, model_version: str, key: str) -> dict | None:
        entry = self._entries.get(self.entry_id(model_version, key))
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("value"), dict):
            return None
        return entry["value"]

    def put(self, model_version: str, key: str, value: dict) -> None:
        entry_id = self.entry_id(model_version, key)
        self._entries[entry_id] = self._new[entry_id] = {"key": key, "value": value}

    @property
    def pending(self) -> int:
        """Entries added since the last save."""
        return len(self._new)

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> int:
        """Write the new entries (merged with the file as it is now); the number written."""
        if not self._new:
            return 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            current = self._read(quiet=True)
            current.update(self._new)
            data = {"format": FORMAT, "hardware": self.hardware_hash, "entries": current}
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, separators=(",", ":"), allow_nan=False)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except (OSError, ValueError) as e:
            warnings.warn(f"cost cache not saved to {self.path}: {e}", stacklevel=2)
            return 0
        written = len(self._new)
        self._entries.update(current)
        self._new.clear()
        return written

    def _read(self, quiet: bool = False) -> dict[str, dict]:
        try:
            text = self.path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except (OSError, UnicodeDecodeError) as e:
            return self._ignored(f"cannot be read ({e})", quiet)
        try:
            data = json.loads(text)
        except ValueError as e:
            return self._ignored(f"is not valid JSON ({e})", quiet)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            return self._ignored("does not hold a cost cache", quiet)
        if data.get("format") != FORMAT:
            return self._ignored(f"has format {data.get('format')!r}, not {FORMAT}", quiet)
        return {k: v for k, v in data["entries"].items() if isinstance(v, dict)}

    def _ignored(self, reason: str, quiet: bool) -> dict:
        if not quiet:
            warnings.warn(f"ignoring cost cache {self.path}: it {reason}", stacklevel=3)
        return {}
