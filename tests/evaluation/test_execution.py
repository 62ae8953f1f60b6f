"""Generated code run against a tiny repo's own tests: pass, fail, timeout, repo untouched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import git
import pytest

from guardian.core.gitutil import archive
from guardian.core.jsonl import read_jsonl
from guardian.core.schema import AskItem, Chunk
from guardian.data.asks import build_asks
from guardian.errors import RepoError
from guardian.evaluation.execution import _scratch_root, definition_of, passes_tests
from guardian.steps.base import StepContext
from guardian.steps.mine import Params, run
from tests.helpers_git import make_git_repo

CALC = '''\
"""Tiny calculator."""


def add(a: int, b: int) -> int:
    """Sum of two numbers."""
    return a + b


class Box:
    """Holds a number."""

    def __init__(self, n: int) -> None:
        self.n = n

    def grow(self, by: int) -> int:
        """Grow the box by `by` and return the new size."""
        self.n += by
        return self.n

    @staticmethod
    def half(n: int) -> int:
        """Half of a number, rounded down."""
        return n // 2

    def shrink(self, by: int) -> int:
        """Shrink the box by `by`."""
        self.n -= by
        return self.n
'''

TESTS = """\
from pkg.calc import Box, add


def test_add() -> None:
    assert add(2, 3) == 5


def test_box() -> None:
    box = Box(1)
    assert box.grow(2) == 3
    assert Box.half(7) == 3
"""

FILES: dict[str, str | bytes] = {
    "pkg/__init__.py": "",
    "pkg/calc.py": CALC,
    "tests/test_calc.py": TESTS,
}


@pytest.fixture()
def repo(tmp_path: Path) -> git.Repo:
    return make_git_repo(tmp_path / "calc", FILES)


def code_items(repo: git.Repo, tmp_path: Path) -> dict[str, AskItem]:
    root = Path(repo.working_tree_dir or "")
    out = tmp_path / "mined"
    run(StepContext(repo=root, out_dir=out, home=tmp_path / "home"), Params(workers=1))
    chunks = list(read_jsonl(out / "chunks.jsonl", Chunk))
    items = build_asks(chunks, set(), seed=0, per_kind=50)
    return {i.qualname: i for i in items if i.kind == "code"}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.parts
    }


def own_scratch() -> list[Path]:
    root = _scratch_root()
    return [p for p in root.glob(f"exec.{os.getpid()}.*")] if root.is_dir() else []


def test_the_repo_tests_decide_pass_or_fail(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    items = code_items(repo, tmp_path)
    add, grow = items["add"], items["Box.grow"]
    assert add.tests == ["tests/test_calc.py"] and grow.tests == ["tests/test_calc.py"]
    before = snapshot(root)
    sha = repo.head.commit.hexsha
    assert passes_tests(root, sha, add, add.reference) is True
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    assert passes_tests(root, sha, add, wrong) is False
    # a method is swapped in at its class's indentation
    assert passes_tests(root, sha, grow, "<ANSWER>: " + grow.reference) is True
    bad_grow = "def grow(self, by):\n    return by\n"
    assert passes_tests(root, sha, grow, bad_grow) is False
    assert snapshot(root) == before and not repo.is_dirty(untracked_files=True)
    assert own_scratch() == []


def test_a_hanging_body_times_out_as_a_failure(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    add = code_items(repo, tmp_path)["add"]
    start = time.monotonic()
    hang = "def add(a, b):\n    while True:\n        pass\n"
    assert passes_tests(root, repo.head.commit.hexsha, add, hang, timeout=3) is False
    assert time.monotonic() - start < 30
    assert own_scratch() == [] and not repo.is_dirty(untracked_files=True)


def test_what_cannot_be_run_is_none(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    items = code_items(repo, tmp_path)
    sha = repo.head.commit.hexsha
    assert items["Box.shrink"].tests == []  # no test calls it
    assert passes_tests(root, sha, items["Box.shrink"], items["Box.shrink"].reference) is None
    assert passes_tests(root, sha, items["add"], "def add(a, b):\n    return (") is None
    moved = items["add"].model_copy(update={"start_line": 2})  # not its definition any more
    assert passes_tests(root, sha, moved, items["add"].reference) is None


def test_a_bare_body_gets_its_signature_and_decorators_are_kept(
    repo: git.Repo, tmp_path: Path
) -> None:
    items = code_items(repo, tmp_path)
    add, half = items["add"], items["Box.half"]
    assert definition_of("return a + b", add) == "def add(a: int, b: int) -> int:\n    return a + b"
    assert half.tests == ["tests/test_calc.py"]
    undecorated = "```python\nclass Box:\n    def half(n):\n        return n // 2\n```"
    assert definition_of(undecorated, half) == "@staticmethod\ndef half(n):\n    return n // 2"
    root = Path(repo.working_tree_dir or "")
    assert passes_tests(root, repo.head.commit.hexsha, half, undecorated) is True


def test_archive_writes_a_commit_and_refuses_an_unknown_one(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(repo.working_tree_dir or "")
    dest = tmp_path / "copy"
    dest.mkdir()
    archive(root, repo.head.commit.hexsha, dest)
    assert snapshot(dest) == snapshot(root)
    with pytest.raises(RepoError, match="git archive"):
        archive(root, "f" * 40, tmp_path)
