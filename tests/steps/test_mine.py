"""The mine step on real git repos: HEAD only, skip reasons, determinism and clear RepoErrors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import git
import pytest
from pydantic import ValidationError

from guardian.errors import RepoError
from guardian.records import Chunk, read_jsonl
from guardian.steps.base import StepContext
from guardian.steps.mine import SPEC, Params, chunk_id, head_tree_sha, open_repo, run
from tests.helpers_git import commit_files, make_git_repo

CORE = '''\
"""Core helpers."""

import os


def load(path: str) -> str:
    """Read a file."""
    with open(path) as fh:
        return fh.read()


class Store:
    """Keeps things."""

    def __init__(self) -> None:
        self.items = {}

    @property
    def size(self) -> int:
        return len(self.items)
'''

UTIL_V1 = "def old_name(x):\n    return x\n"
UTIL_V2 = "def new_name(x):\n    return x * 2\n"

FILES: dict[str, str | bytes] = {
    "pkg/__init__.py": "",
    "pkg/core.py": CORE,
    "pkg/util.py": UTIL_V1,
    "pkg/blob.py": b"def f():\n    pass\n\x00\x01\x02",
    "pkg/latin1.py": "def caf\u00e9():\n    return '\u00e9'\n".encode("latin-1"),
    "node_modules/dep/index.py": "def vendored():\n    pass\n",
    "gen/schema_pb2.py": "def generated():\n    pass\n",
    "tests/test_core.py": "def test_load():\n    assert True\n",
    "README.md": "# demo\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
}


@pytest.fixture()
def repo(tmp_path: Path) -> git.Repo:
    """A repo with every kind of skippable file, a symlink, and uncommitted/untracked edits."""
    handle = make_git_repo(tmp_path / "demo", FILES)
    root = Path(handle.working_tree_dir or "")
    os.symlink("core.py", root / "pkg" / "link.py")
    handle.git.add("pkg/link.py")
    handle.git.commit("-m", "add symlink")
    (root / "pkg" / "util.py").write_text(UTIL_V2)
    (root / "pkg" / "untracked.py").write_text("def untracked():\n    pass\n")
    return handle


def _ctx(repo_dir: Path, out: Path, name: str = "") -> StepContext:
    return StepContext(repo=repo_dir, out_dir=out, home=out.parent / "home", repo_name=name)


def _mine(repo_dir: Path, out: Path, **params: object) -> tuple[list[Chunk], dict[str, object]]:
    result = run(_ctx(repo_dir, out), Params.model_validate(params))
    assert result.outputs == ["chunks.jsonl", "stats.json"]
    chunks = list(read_jsonl(out / "chunks.jsonl", Chunk))
    stats = json.loads((out / "stats.json").read_text())
    assert result.metrics == {
        "files_mined": stats["files_mined"],
        "chunks": stats["chunks"],
        "skipped_total": sum(stats["skipped"].values()),
    }
    return chunks, stats


def test_mines_committed_head_only(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    chunks, stats = _mine(root, tmp_path / "out")
    by_path = {(c.path, c.qualname) for c in chunks}
    assert by_path == {
        ("pkg/core.py", "load"),
        ("pkg/core.py", "Store"),
        ("pkg/core.py", "Store.__init__"),
        ("pkg/core.py", "Store.size"),
        ("pkg/util.py", "old_name"),
        ("gen/schema_pb2.py", "generated"),
        ("tests/test_core.py", "test_load"),
    }
    util = next(c for c in chunks if c.path == "pkg/util.py")
    assert util.code == UTIL_V1.rstrip("\n")
    assert stats["skipped"] == {
        "symlink": 1,
        "submodule": 0,
        "vendored": 1,
        "excluded": 0,
        "tests": 0,
        "unsupported": 2,
        "too_large": 0,
        "binary": 1,
        "not_utf8": 1,
    }
    assert stats["files_seen"] == len(FILES) + 1
    assert stats["files_mined"] == 5
    assert stats["chunks"] == 7
    assert stats["by_kind"] == {"function": 4, "class": 1, "method": 2}
    assert stats["by_language"] == {"python": 7}
    assert stats["files_with_syntax_errors"] == 0


def test_chunk_fields(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    chunks, _ = _mine(root, tmp_path / "out")
    assert [(c.path, c.start_line, c.qualname) for c in chunks] == sorted(
        (c.path, c.start_line, c.qualname) for c in chunks
    )
    size = next(c for c in chunks if c.qualname == "Store.size")
    assert size.kind == "method" and size.name == "size" and size.language == "python"
    assert size.repo == "demo"
    assert size.commit == repo.head.commit.hexsha
    assert (size.start_line, size.end_line) == (18, 20)
    assert size.code == "@property\ndef size(self) -> int:\n    return len(self.items)"
    assert size.signature == "def size(self) -> int"
    assert size.docstring is None
    assert size.id == chunk_id("pkg/core.py", "Store.size", 18)
    assert (
        len(size.id) == 16
        and size.id == hashlib.sha256(b"pkg/core.py:Store.size:18").hexdigest()[:16]
    )
    assert size.content_hash == hashlib.sha256(size.code.encode()).hexdigest()
    load = next(c for c in chunks if c.qualname == "load")
    assert load.docstring == "Read a file." and load.kind == "function"
    assert len({c.id for c in chunks}) == len(chunks)
    named = run(_ctx(root, tmp_path / "named", name="acme/demo"), Params())
    assert named.metrics["chunks"] == len(chunks)
    assert {c.repo for c in read_jsonl(tmp_path / "named" / "chunks.jsonl", Chunk)} == {"acme/demo"}


def test_exclude_tests_and_size_limits(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    commit_files(repo, {"pkg/small.py": "def small():\n    return 1\n"}, "small")
    assert len(CORE) > 200
    chunks, stats = _mine(
        root,
        tmp_path / "out",
        exclude=["gen", "*/util.py"],
        include_tests=False,
        max_file_bytes=200,
    )
    assert [(c.path, c.qualname) for c in chunks] == [("pkg/small.py", "small")]
    skipped = stats["skipped"]
    assert (skipped["excluded"], skipped["tests"], skipped["too_large"]) == (2, 1, 1)
    assert (skipped["binary"], skipped["not_utf8"]) == (1, 1)
    assert stats["files_mined"] == 2


def test_output_is_byte_deterministic(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    run(_ctx(root, tmp_path / "a"), Params())
    run(_ctx(root, tmp_path / "b"), Params())
    for name in ("chunks.jsonl", "stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_head_tree_sha_tracks_content_not_commits(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir or "")
    first = head_tree_sha(root)
    assert first == repo.head.commit.tree.hexsha
    repo.git.commit("--allow-empty", "-m", "no change")
    assert head_tree_sha(root) == first
    commit_files(repo, {"pkg/util.py": UTIL_V2}, "v2")
    assert head_tree_sha(root) != first
    with open_repo(root) as handle:
        assert handle.head.commit.hexsha == repo.head.commit.hexsha


def test_new_commit_is_mined(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    sha = commit_files(repo, {"pkg/util.py": UTIL_V2}, "v2")
    chunks, _ = _mine(root, tmp_path / "out")
    names = {c.qualname for c in chunks if c.path == "pkg/util.py"}
    assert names == {"new_name"}
    assert {c.commit for c in chunks} == {sha}


def test_syntax_errors_are_counted_not_fatal(tmp_path: Path) -> None:
    files = {
        "ok.py": "def fine():\n    pass\n",
        "bad.py": "def broken(:\n    pass\n\ndef later():\n    pass\n",
    }
    make_git_repo(tmp_path / "r", files)
    chunks, stats = _mine(tmp_path / "r", tmp_path / "out")
    assert {(c.path, c.qualname) for c in chunks} == {("ok.py", "fine"), ("bad.py", "later")}
    assert stats["files_with_syntax_errors"] == 1


def test_error_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RepoError) as err:
        run(_ctx(missing, tmp_path / "out"), Params())
    assert str(err.value) == f"{missing}: no such directory"
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(RepoError, match="no such directory$"):
        head_tree_sha(afile)


def test_error_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("def a():\n    pass\n")
    with pytest.raises(RepoError) as err:
        run(_ctx(plain, tmp_path / "out"), Params())
    assert str(err.value) == f"{plain}: not a git repository"
    with pytest.raises(RepoError, match="not a git repository$"):
        head_tree_sha(plain)


def test_error_no_commits(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    make_git_repo(empty, {})
    (empty / "a.py").write_text("def a():\n    pass\n")
    with pytest.raises(RepoError) as err:
        run(_ctx(empty, tmp_path / "out"), Params())
    assert str(err.value) == f"{empty}: repository has no commits"
    with pytest.raises(RepoError, match="repository has no commits$"):
        head_tree_sha(empty)


def test_error_no_supported_files(tmp_path: Path) -> None:
    handle = make_git_repo(tmp_path / "docs", {"README.md": "# hi\n", "setup.py": "X = 1\n"})
    out = tmp_path / "out"
    with pytest.raises(RepoError) as err:
        run(_ctx(tmp_path / "docs", out), Params())
    sha7 = handle.head.commit.hexsha[:7]
    expected = f"{tmp_path / 'docs'}: no supported source files (languages: python) at HEAD {sha7}"
    assert str(err.value) == expected
    assert not (out / "chunks.jsonl").exists()


def test_params_validation() -> None:
    assert Params().languages == ["python"]
    assert Params(languages=["python", "python"]).languages == ["python"]
    with pytest.raises(ValidationError, match="no miner for go"):
        Params(languages=["go"])
    with pytest.raises(ValidationError):
        Params(languages=["cobol"])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        Params(max_file_bytes=0)
    with pytest.raises(ValidationError):
        Params(languages=[])
    with pytest.raises(ValidationError):
        Params.model_validate({"exclude_tests": True})


def test_spec_wiring() -> None:
    assert (SPEC.name, SPEC.needs, SPEC.provides, SPEC.uses_repo) == ("mine", (), "chunks", True)
    assert SPEC.fn is run and SPEC.params is Params


def test_submodule_entries_are_skipped(tmp_path: Path) -> None:
    handle = make_git_repo(tmp_path / "r", {"a.py": "def a():\n    pass\n"})
    other = handle.head.commit.hexsha
    handle.git.update_index("--add", "--cacheinfo", f"160000,{other},libs/sub")
    handle.git.commit("-m", "add gitlink")
    chunks, stats = _mine(tmp_path / "r", tmp_path / "out")
    assert [c.qualname for c in chunks] == ["a"]
    assert stats["skipped"]["submodule"] == 1
    assert stats["files_seen"] == 2
