"""The `mine` step: every function, method and class in the files git tracks at HEAD.

Reads blobs from the HEAD commit's tree (never the working tree, so uncommitted edits and
untracked files are invisible), parses each supported file once with tree-sitter and writes
`chunks.jsonl` (sorted, byte-deterministic) and `stats.json` (counts and skip reasons).
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import structlog
from pydantic import Field, field_validator

from guardian.errors import RepoError
from guardian.records import Chunk, Language, write_json, write_jsonl
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

if TYPE_CHECKING:
    import git

    from guardian.mining import LanguageSpec

log = structlog.get_logger(__name__)

VENDORED_DIRS = frozenset({"node_modules", "vendor", "third_party", "site-packages", ".venv"})
TEST_DIRS = frozenset({"test", "tests", "__tests__"})
SKIP_REASONS = (
    "symlink",
    "submodule",
    "vendored",
    "excluded",
    "tests",
    "unsupported",
    "too_large",
    "binary",
    "not_utf8",
)
_SYMLINK_MODE = 0o120000


class Params(StepParams):
    """Which languages to mine and which tracked files to leave out."""

    languages: list[Language] = Field(default=["python"], min_length=1)
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    exclude: list[str] = Field(
        default_factory=list,
        description="fnmatch globs on repo-relative POSIX paths (`*` crosses `/`); a pattern "
        "matching a directory excludes everything under it",
    )
    include_tests: bool = True

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[Language]) -> list[Language]:
        from guardian.mining import languages

        known = languages()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(
                f"no miner for {', '.join(unknown)} yet (available: {', '.join(sorted(known))})"
            )
        return list(dict.fromkeys(value))


def open_repo(repo: Path) -> git.Repo:
    """Open `repo` as a git repository whose HEAD has a commit; the caller closes it."""
    import git

    if not repo.is_dir():
        raise RepoError(f"{repo}: no such directory")
    try:
        handle = git.Repo(repo)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(f"{repo}: not a git repository") from None
    if not handle.head.is_valid():
        handle.close()
        raise RepoError(f"{repo}: repository has no commits")
    return handle


def head_tree_sha(repo: Path) -> str:
    """The sha of HEAD^{tree}: identical trees mine identically, so it keys the mine cache."""
    with open_repo(repo) as handle:
        return str(handle.head.commit.tree.hexsha)


def chunk_id(path: str, qualname: str, start_line: int) -> str:
    """A stable 16-hex-char id for a unit at a location."""
    return hashlib.sha256(f"{path}:{qualname}:{start_line}".encode()).hexdigest()[:16]


def _excluded(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pat) for pat in patterns for p in prefixes)


def _is_test(path: str, test_globs: tuple[str, ...]) -> bool:
    pure = PurePosixPath(path)
    if any(part in TEST_DIRS for part in pure.parts[:-1]):
        return True
    return any(fnmatch.fnmatchcase(pure.name, pat) for pat in test_globs)


def _tracked(tree: git.Tree) -> Iterator[tuple[str, git.Blob | None]]:
    """(path, blob) for every file entry in the tree; gitlinks (submodules) come with None."""
    import git

    for item in tree.traverse():
        if isinstance(item, git.Blob):
            yield str(item.path), item
        elif isinstance(item, git.Submodule):
            yield str(item.path), None


def _classify(path: str, entry: git.Blob | None, params: Params) -> str | LanguageSpec:
    """The skip reason for a tracked entry from its metadata alone, or the spec to mine it with."""
    from guardian.mining import spec_for_path

    if entry is None:
        return "submodule"
    if entry.mode == _SYMLINK_MODE:
        return "symlink"
    if any(part in VENDORED_DIRS for part in PurePosixPath(path).parts[:-1]):
        return "vendored"
    if params.exclude and _excluded(path, params.exclude):
        return "excluded"
    spec = spec_for_path(path)
    if spec is None or spec.name not in params.languages:
        return "unsupported"
    if not params.include_tests and _is_test(path, spec.test_globs):
        return "tests"
    if entry.size > params.max_file_bytes:
        return "too_large"
    return spec


def _load(path: str, entry: git.Blob | None, params: Params) -> str | tuple[LanguageSpec, bytes]:
    """The spec and bytes of a file to mine, or why it is skipped (metadata first, then content)."""
    spec = _classify(path, entry, params)
    if isinstance(spec, str) or entry is None:
        return spec if isinstance(spec, str) else "submodule"
    data: bytes = entry.data_stream.read()
    if b"\x00" in data:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    return spec, data


def run(ctx: StepContext, params: Params) -> StepResult:
    """Mine HEAD of `ctx.repo` into chunks.jsonl and stats.json in `ctx.out_dir`."""
    from guardian.mining import extract_units

    skipped: Counter[str] = Counter({reason: 0 for reason in SKIP_REASONS})
    chunks: list[Chunk] = []
    warnings: list[str] = []
    files_seen = files_mined = 0
    repo_name = ctx.repo_name or ctx.repo.resolve().name
    with open_repo(ctx.repo) as handle:
        commit = handle.head.commit
        sha = str(commit.hexsha)
        for path, entry in _tracked(commit.tree):
            files_seen += 1
            loaded = _load(path, entry, params)
            if isinstance(loaded, str):
                skipped[loaded] += 1
                continue
            spec, data = loaded
            files_mined += 1
            for unit in extract_units(data, path, spec, warnings):
                chunks.append(
                    Chunk(
                        id=chunk_id(path, unit.qualname, unit.start_line),
                        repo=repo_name,
                        commit=sha,
                        path=path,
                        language=spec.name,
                        kind=unit.kind,
                        name=unit.name,
                        qualname=unit.qualname,
                        signature=unit.signature,
                        docstring=unit.docstring,
                        code=unit.code,
                        start_line=unit.start_line,
                        end_line=unit.end_line,
                        content_hash=hashlib.sha256(unit.code.encode("utf-8")).hexdigest(),
                    )
                )
    if not chunks:
        langs = ", ".join(params.languages)
        raise RepoError(
            f"{ctx.repo}: no supported source files (languages: {langs}) at HEAD {sha[:7]}"
        )
    chunks.sort(key=lambda c: (c.path, c.start_line, c.qualname))
    write_jsonl(ctx.out_dir / "chunks.jsonl", chunks)
    stats = {
        "files_seen": files_seen,
        "files_mined": files_mined,
        "files_with_syntax_errors": len(warnings),
        "chunks": len(chunks),
        "by_kind": dict(Counter(c.kind for c in chunks)),
        "by_language": dict(Counter(c.language for c in chunks)),
        "skipped": dict(skipped),
    }
    write_json(ctx.out_dir / "stats.json", stats)
    skipped_total = sum(skipped.values())
    log.info(
        "mine.done",
        repo=repo_name,
        commit=sha[:7],
        files_mined=files_mined,
        chunks=len(chunks),
        skipped=skipped_total,
        syntax_errors=len(warnings),
    )
    return StepResult(
        outputs=["chunks.jsonl", "stats.json"],
        metrics={"files_mined": files_mined, "chunks": len(chunks), "skipped_total": skipped_total},
    )


SPEC = StepSpec(name="mine", fn=run, params=Params, needs=(), provides="chunks", uses_repo=True)
