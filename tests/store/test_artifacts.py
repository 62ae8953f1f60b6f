from __future__ import annotations

import os
from pathlib import Path

from guardian.store.artifacts import ArtifactStore, cache_key, dir_digest


def test_cache_key_is_canonical() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("one")
    d1 = dir_digest(tmp_path / "x")
    (tmp_path / "x" / "a.txt").write_text("two")
    d2 = dir_digest(tmp_path / "x")
    (tmp_path / "x" / "a.txt").rename(tmp_path / "x" / "b.txt")
    assert len({d1, d2, dir_digest(tmp_path / "x")}) == 3


def test_commit_is_atomic_and_idempotent(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    key = cache_key({"k": 1})
    tmp = store.begin(key)
    (tmp / "out.txt").write_text("data")
    assert not store.exists(key)
    final = store.commit(key, tmp, {"step": "s"})
    assert store.exists(key) and not tmp.exists()
    assert store.meta(key)["digest"] == dir_digest(final)
    tmp2 = store.begin(key)
    (tmp2 / "out.txt").write_text("other")
    store.commit(key, tmp2, {"step": "s"})
    assert (final / "out.txt").read_text() == "data"


def test_sweep_removes_only_dead_processes_temp_dirs(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    mine = store.begin("a" * 64)
    dead = store.tmp_root / f"{'b' * 16}.999999999.abcdef"
    dead.mkdir()
    assert store.sweep() == 1
    assert mine.exists() and not dead.exists()
    assert str(os.getpid()) in mine.name
