"""Incremental mining through the step: the parse cache, --since, the process pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Chunk
from guardian.errors import RepoError
from guardian.steps.base import StepContext
from guardian.steps.mine import Params, run
from tests.helpers_git import commit_files, make_git_repo

MATH_V1 = '''\
def add(a, b):
    """Add two numbers."""
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b
'''

MATH_V2 = '''\
import operator


def add(a, b):
    """Add two numbers."""
    return a + b


def mul(a, b):
    return operator.mul(a, b)
'''

FILES: dict[str, str | bytes] = {
    "app/math.py": MATH_V1,
    "app/text.py": "def shout(s):\n    return s.upper()\n",
    "app/old.py": "def legacy():\n    return None\n",
    "web/ui.js": "export function show(el) {\n  el.hidden = false;\n}\n",
    "svc/main.go": "package main\n\nfunc main() {}\n",
}


@pytest.fixture()
def repo(tmp_path: Path) -> git.Repo:
    return make_git_repo(tmp_path / "proj", FILES)


def _mine(
    repo: git.Repo, out: Path, home: Path, **params: object
) -> tuple[list[Chunk], dict[str, Any]]:
    ctx = StepContext(repo=Path(repo.working_tree_dir or ""), out_dir=out, home=home)
    result = run(ctx, Params.model_validate(params))
    return list(read_jsonl(out / "chunks.jsonl", Chunk)), result.metrics


def test_second_run_reparses_only_changed_files(repo: git.Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    before, first = _mine(repo, tmp_path / "v1", home)
    assert (first["files_parsed"], first["files_reused"]) == (5, 0)
    sha = commit_files(
        repo,
        {"app/math.py": MATH_V2, "app/new.py": "def fresh():\n    return 1\n"},
        "v2",
        delete=("app/old.py",),
    )
    after, second = _mine(repo, tmp_path / "v2", home)
    assert (second["files_parsed"], second["files_reused"]) == (2, 3)
    names = {(c.path, c.qualname) for c in after}
    assert ("app/math.py", "sub") not in names and ("app/old.py", "legacy") not in names
    assert ("app/new.py", "fresh") in names
    assert {c.commit for c in after} == {sha}
    old = {c.id: c for c in before}
    new = {c.id: c for c in after}
    add_before = next(c for c in before if c.qualname == "add")
    add_after = new[add_before.id]
    assert (add_before.start_line, add_after.start_line) == (1, 4)
    assert add_after.content_hash == add_before.content_hash
    assert new[old[add_before.id].id].id == add_before.id
    mul_after = next(c for c in after if c.qualname == "mul")
    assert mul_after.id in old and mul_after.content_hash != old[mul_after.id].content_hash
    for chunk in after:
        if chunk.path in ("app/text.py", "web/ui.js", "svc/main.go"):
            assert chunk.model_copy(update={"commit": ""}) == old[chunk.id].model_copy(
                update={"commit": ""}
            )
    _mine(repo, tmp_path / "cold", tmp_path / "fresh-home")
    assert (tmp_path / "v2" / "chunks.jsonl").read_bytes() == (
        tmp_path / "cold" / "chunks.jsonl"
    ).read_bytes()


def test_since_forces_reparsing_changed_files(repo: git.Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    v1 = repo.head.commit.hexsha
    commit_files(repo, {"app/math.py": MATH_V2, "README.md": "# docs\n"}, "v2")
    _, warm = _mine(repo, tmp_path / "a", home)
    assert warm["files_parsed"] == 5
    _, cached = _mine(repo, tmp_path / "b", home)
    assert (cached["files_parsed"], cached["files_reused"]) == (0, 5)
    _, since = _mine(repo, tmp_path / "c", home, since=v1)
    assert since["files_changed_since"] == 2
    assert (since["files_parsed"], since["files_reused"]) == (1, 4)
    assert (tmp_path / "a" / "chunks.jsonl").read_bytes() == (
        tmp_path / "c" / "chunks.jsonl"
    ).read_bytes()
    _, fresh = _mine(repo, tmp_path / "d", tmp_path / "empty-home", since=v1)
    assert (fresh["files_parsed"], fresh["files_reused"]) == (5, 0)


def test_since_unknown_revision_is_a_clear_error(repo: git.Repo, tmp_path: Path) -> None:
    with pytest.raises(RepoError) as err:
        _mine(repo, tmp_path / "out", tmp_path / "home", since="no-such-rev")
    assert str(err.value) == f"{repo.working_tree_dir}: --since no-such-rev: unknown revision"


def test_process_pool_matches_serial_output(repo: git.Repo, tmp_path: Path) -> None:
    _, serial = _mine(repo, tmp_path / "serial", tmp_path / "h1", workers=1)
    _, pooled = _mine(repo, tmp_path / "pooled", tmp_path / "h2", workers=2, parallel_min_bytes=0)
    assert "parallel_workers" not in serial and pooled["parallel_workers"] == 2
    assert pooled["files_parsed"] == 5
    assert (tmp_path / "serial" / "chunks.jsonl").read_bytes() == (
        tmp_path / "pooled" / "chunks.jsonl"
    ).read_bytes()
    cache_files = list((tmp_path / "h2" / "cache" / "mine").rglob("*"))
    assert len([p for p in cache_files if p.is_file()]) == 5
    assert not [p for p in cache_files if p.name.startswith(".")], "temp files left behind"


def test_corrupt_or_missing_cache_entries_are_reparsed(repo: git.Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _mine(repo, tmp_path / "a", home)
    entries = sorted(p for p in (home / "cache" / "mine").rglob("*") if p.is_file())
    assert len(entries) == 5
    entries[0].write_bytes(entries[0].read_bytes()[:-7])
    entries[1].write_bytes(b"not json\n")
    entries[2].unlink()
    _, metrics = _mine(repo, tmp_path / "b", home)
    assert (metrics["files_parsed"], metrics["files_reused"]) == (3, 2)
    assert (tmp_path / "a" / "chunks.jsonl").read_bytes() == (
        tmp_path / "b" / "chunks.jsonl"
    ).read_bytes()
    _, healed = _mine(repo, tmp_path / "c", home)
    assert healed["files_reused"] == 5


def test_plain_directory_is_mined_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    files = {
        ".gitignore": "build/\n*.gen.py\n",
        "src/app.py": "def app():\n    return 1\n",
        "src/skip.gen.py": "def ignored():\n    pass\n",
        "src/.gitignore": "!keep.gen.py\n",
        "src/keep.gen.py": "def kept():\n    pass\n",
        "build/out.py": "def built():\n    pass\n",
        "node_modules/x/index.js": "function dep() {}\n",
        "web/main.ts": "export const run = (): void => {};\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    outside = tmp_path / "outside.py"
    outside.write_text("def secret_elsewhere():\n    pass\n")
    (root / "src" / "link.py").symlink_to(outside)
    home = tmp_path / "home"
    chunks, metrics = _mine_dir(root, tmp_path / "out", home)
    assert {(c.path, c.qualname) for c in chunks} == {
        ("src/app.py", "app"),
        ("src/keep.gen.py", "kept"),
        ("web/main.ts", "run"),
    }
    assert {c.commit for c in chunks} == {""}
    assert metrics["note"].startswith("plain directory (no git)")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["source"] == "plain_dir" and stats["commit"] == ""
    skipped = stats["skipped"]
    assert (skipped["gitignored"], skipped["vendored"], skipped["symlink"]) == (2, 1, 1)
    assert skipped["unsupported"] == 2
    _, again = _mine_dir(root, tmp_path / "out2", home)
    assert (again["files_parsed"], again["files_reused"]) == (0, 3)
    with pytest.raises(RepoError, match="--since needs a git repository$"):
        _mine_dir(root, tmp_path / "out3", home, since="HEAD~1")


def _mine_dir(
    root: Path, out: Path, home: Path, **params: object
) -> tuple[list[Chunk], dict[str, Any]]:
    ctx = StepContext(repo=root, out_dir=out, home=home)
    result = run(ctx, Params.model_validate({"allow_plain_dir": True, **params}))
    return list(read_jsonl(out / "chunks.jsonl", Chunk)), result.metrics


def test_context_commit_selects_the_tree_to_mine(repo: git.Repo, tmp_path: Path) -> None:
    v1 = repo.head.commit.hexsha
    commit_files(repo, {"app/math.py": MATH_V2}, "v2")
    root = Path(repo.working_tree_dir or "")
    ctx = StepContext(repo=root, out_dir=tmp_path / "old", home=tmp_path / "home", commit=v1)
    run(ctx, Params())
    chunks = list(read_jsonl(tmp_path / "old" / "chunks.jsonl", Chunk))
    assert {c.commit for c in chunks} == {v1}
    assert ("app/math.py", "sub") in {(c.path, c.qualname) for c in chunks}
    bad = StepContext(repo=root, out_dir=tmp_path / "bad", home=tmp_path / "home", commit="f" * 40)
    with pytest.raises(RepoError, match=f"commit {'f' * 40} not found$"):
        run(bad, Params())


def test_non_utf8_paths_are_skipped_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "r"
    handle = make_git_repo(root, {"ok.py": "def ok():\n    pass\n"})
    (root / "caf\xe9.py".encode("latin-1").decode("utf-8", "surrogateescape")).write_text(
        "def latin():\n    pass\n"
    )
    handle.git.add("-A")
    handle.git.commit("-m", "latin-1 file name")
    chunks, metrics = _mine(handle, tmp_path / "out", tmp_path / "home")
    assert [c.qualname for c in chunks] == ["ok"]
    assert metrics["skipped_not_utf8"] == 1


def test_pool_beside_other_threads_uses_forkserver(repo: git.Repo, tmp_path: Path) -> None:
    import threading

    from guardian.mining.engine import _pool_context

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    try:
        assert _pool_context().get_start_method() == "forkserver"
        _, pooled = _mine(repo, tmp_path / "p", tmp_path / "h1", workers=2, parallel_min_bytes=0)
    finally:
        stop.set()
        helper.join()
    assert pooled["parallel_workers"] == 2
    _mine(repo, tmp_path / "s", tmp_path / "h2", workers=1)
    assert (tmp_path / "p" / "chunks.jsonl").read_bytes() == (
        tmp_path / "s" / "chunks.jsonl"
    ).read_bytes()
