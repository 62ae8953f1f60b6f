"""The per-file parse cache: mined results keyed by (path, blob id, miner version, settings).

Entries live under `<home>/cache/mine/<k[:2]>/<k>` and are written atomically by whoever
parsed the file (a pool worker or the main process). A file whose blob is unchanged is never
parsed again, whichever commit or run asks, which is what makes re-mining after a small change
cheap. Entries hold only redacted text. Nothing is evicted automatically; deleting the
directory is always safe (everything is re-parsed once).
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from pathlib import Path

import structlog

from guardian.core.versions import distribution_versions
from guardian.mining.files import FileResult

log = structlog.get_logger(__name__)

MINER_VERSION = "2"
PARSER_DISTRIBUTIONS = (
    "tree-sitter",
    "tree-sitter-python",
    "tree-sitter-javascript",
    "tree-sitter-typescript",
    "tree-sitter-go",
    "detect-secrets",
    "pydantic",
)


@lru_cache(maxsize=1)
def _versions() -> str:
    found = distribution_versions(PARSER_DISTRIBUTIONS, missing="?")
    return ";".join(f"{name}={version}" for name, version in found.items())


class ParseCache:
    """Look up and locate cache entries; `root=None` disables caching."""

    def __init__(self, root: Path | None, redact: bool) -> None:
        self.root = root
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        self.salt = f"miner={MINER_VERSION};python={py};{_versions()};redact={redact}"

    def file_for(self, path: str, oid: str) -> Path | None:
        """Where the entry for this path and blob lives (None when caching is off)."""
        if self.root is None:
            return None
        key = hashlib.sha256(f"{self.salt}\0{path}\0{oid}".encode()).hexdigest()
        return self.root / key[:2] / key

    def load(self, cache_file: Path | None) -> FileResult | None:
        """The cached result, or None when absent; a corrupt entry is logged and ignored."""
        if cache_file is None:
            return None
        try:
            data = cache_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("mine.cache_unreadable", file=str(cache_file), error=str(exc))
            return None
        try:
            return FileResult.loads(data)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("mine.cache_corrupt", file=str(cache_file), error=str(exc))
            return None
