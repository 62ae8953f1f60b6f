"""The `mine` step: every function, method and class of a repo, in Python, JS, TS and Go.

Reads the committed tree of `ctx.commit` (the pipeline's run commit; HEAD when empty), never
the working tree, so uncommitted edits and untracked files are invisible. With
`allow_plain_dir` (the CLI sets it) a directory that is not a git repository is mined from
disk instead, and the metrics carry a `note` saying so. Writes `chunks.jsonl` (sorted by path,
line, qualname; byte-identical for the same commit however much came from the cache) and
`stats.json` (counts per language, kind, skip reason and redacted-secret kind).

Incremental by construction: each file's result is cached under `<home>/cache/mine`, keyed by
path and blob id, so a run (in the pipeline, one per commit) parses only files whose content
changed since any earlier run and replays the rest; the output is always the complete chunk
set of the commit, so deleted functions disappear. `since=REV` (CLI `--since`) additionally
forces the files that differ between REV and the commit to be re-parsed even if cached and
reports how many there were; files unchanged since REV are replayed from the cache, or parsed
if absent, so the output is the same as without it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog
from pydantic import Field, field_validator

from guardian.core.faults import fault_point
from guardian.core.fsutil import atomic_write
from guardian.core.gitutil import is_git_repo, resolve_commit
from guardian.core.jsonl import write_json
from guardian.core.schema import Language
from guardian.errors import RepoError
from guardian.mining.cache import PARSER_DISTRIBUTIONS
from guardian.mining.files import chunk_id
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

if TYPE_CHECKING:
    from guardian.mining.engine import Miner
    from guardian.mining.sources import DirSource, GitSource

__all__ = [
    "SPEC",
    "Params",
    "chunk_id",
    "format_stats",
    "run",
]

log = structlog.get_logger(__name__)

ALL_LANGUAGES: list[Language] = ["python", "javascript", "typescript", "go"]
PLAIN_DIR_NOTE = (
    "plain directory (no git): mined the files on disk now, honouring .gitignore files; "
    "chunks carry no commit and --since is unavailable"
)


class Params(StepParams):
    """Which languages and files to mine, how, and what to re-parse."""

    languages: list[Language] = Field(default_factory=lambda: list(ALL_LANGUAGES), min_length=1)
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    exclude: list[str] = Field(
        default_factory=list,
        description="fnmatch globs on repo-relative POSIX paths (`*` crosses `/`); a pattern "
        "matching a directory excludes everything under it",
    )
    include_tests: bool = True
    since: str | None = Field(
        default=None, description="re-parse files changed since this git revision, even if cached"
    )
    allow_plain_dir: bool = Field(
        default=False, description="mine a directory that is not a git repository (CLI use)"
    )
    workers: int = Field(default=0, ge=0, description="parser processes; 0 = one per core")
    parallel_min_bytes: int = Field(
        default=2_000_000, ge=0, description="use the process pool from this much source to parse"
    )

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


def open_source(repo: Path, allow_plain_dir: bool, commit: str = "") -> GitSource | DirSource:
    """The git source for `commit` (default HEAD) of `repo`, or, when allowed and `repo` is not
    a git repository, a plain-directory source."""
    from guardian.mining.sources import DirSource, GitSource

    if allow_plain_dir and repo.is_dir() and not is_git_repo(repo):
        return DirSource(repo)
    return GitSource(repo, resolve_commit(repo, commit))


def _stats(source: Any, counts: Any, tallies: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "plain_dir" if source.plain else "git",
        "commit": source.commit,
        "files_seen": counts.files_seen,
        "files_mined": tallies["files_mined"],
        "files_with_syntax_errors": len(tallies["warnings"]),
        "chunks": tallies["chunks"],
        "clones": tallies["clones"],
        "by_kind": dict(tallies["by_kind"]),
        "by_language": dict(tallies["by_language"]),
        "files_by_language": dict(tallies["files_by_language"]),
        "skipped": dict(counts.skipped),
        "secrets_redacted": dict(tallies["secrets"]),
        "syntax_errors": tallies["warnings"][:50],
    }


def _metrics(stats: dict[str, Any], counts: Any, forced: set[str] | None) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "files_seen": stats["files_seen"],
        "files_mined": stats["files_mined"],
        "files_parsed": counts.files_parsed,
        "files_reused": counts.files_reused,
        "chunks": stats["chunks"],
        "clones": stats["clones"],
        "syntax_errors": stats["files_with_syntax_errors"],
        "skipped_total": sum(stats["skipped"].values()),
        "secrets_redacted": sum(stats["secrets_redacted"].values()),
    }
    metrics.update({f"skipped_{k}": v for k, v in sorted(stats["skipped"].items()) if v})
    metrics.update({f"secrets_{k}": v for k, v in sorted(stats["secrets_redacted"].items())})
    if counts.parallel_workers:
        metrics["parallel_workers"] = counts.parallel_workers
    if forced is not None:
        metrics["files_changed_since"] = len(forced)
    if counts.cache_errors:
        metrics["cache_write_errors"] = len(counts.cache_errors)
    if stats["source"] == "plain_dir":
        metrics["note"] = PLAIN_DIR_NOTE
    return metrics


def _write_chunks(
    miner: Miner, out: IO[bytes], repo_json: bytes, commit: bytes, tallies: dict[str, Any]
) -> None:
    """Write every mined chunk line, marking clones of the first chunk with the same tokens."""
    from guardian.mining.files import chunk_line

    canonical: dict[str, str] = {}
    for result in miner.results():
        if result.skip is not None:
            continue
        tallies["files_mined"] += 1
        tallies["files_by_language"][result.language] += 1
        tallies["warnings"].extend(result.warnings)
        tallies["secrets"].update(result.redactions)
        rows = zip(result.ids, result.norm_hashes, result.lines, strict=True)
        block = []
        for ident, norm, line in rows:
            first = canonical.setdefault(norm, ident)
            clone_of = None if first == ident else first
            block.append(chunk_line(line, repo_json, commit, clone_of) + b"\n")
            tallies["clones"] += clone_of is not None
        out.write(b"".join(block))
        out.flush()
        fault_point("during", "mine")
        tallies["chunks"] += len(block)
        tallies["by_kind"].update(result.kinds)
        tallies["by_language"][result.language] += len(block)


def run(ctx: StepContext, params: Params) -> StepResult:
    """Mine `ctx.repo` into chunks.jsonl and stats.json in `ctx.out_dir`."""
    from guardian.mining.cache import ParseCache
    from guardian.mining.engine import Miner, Settings

    source = open_source(ctx.repo, params.allow_plain_dir, ctx.commit)
    forced = source.changed_since(params.since) if params.since else None
    settings = Settings(
        languages=frozenset(params.languages),
        max_file_bytes=params.max_file_bytes,
        exclude=tuple(params.exclude),
        include_tests=params.include_tests,
        workers=params.workers,
        parallel_min_bytes=params.parallel_min_bytes,
    )
    miner = Miner(source, settings, ParseCache(ctx.home / "cache" / "mine", redact=True), forced)
    repo_name = ctx.repo_name or ctx.repo.resolve().name
    repo_json = json.dumps(repo_name, ensure_ascii=False).encode("utf-8")
    commit = source.commit.encode("ascii")
    tallies: dict[str, Any] = {
        "files_mined": 0,
        "chunks": 0,
        "clones": 0,
        "warnings": [],
        "by_kind": Counter(),
        "by_language": Counter(),
        "files_by_language": Counter(),
        "secrets": Counter(),
    }
    with atomic_write(ctx.out_dir / "chunks.jsonl", binary=True) as out:
        _write_chunks(miner, out, repo_json, commit, tallies)
        if not tallies["chunks"]:
            langs = ", ".join(params.languages)
            where = "in the directory" if source.plain else f"at HEAD {source.commit[:7]}"
            skipped = ", ".join(f"{k}={v}" for k, v in sorted(miner.counts.skipped.items()) if v)
            why = f"; skipped: {skipped}" if skipped else ""
            raise RepoError(
                f"{ctx.repo}: no supported source files (languages: {langs}) {where}{why}"
            )
    stats = _stats(source, miner.counts, tallies)
    write_json(ctx.out_dir / "stats.json", stats)
    metrics = _metrics(stats, miner.counts, forced)
    log.info(
        "mine.done",
        repo=repo_name,
        commit=source.commit[:7],
        chunks=stats["chunks"],
        files_parsed=metrics["files_parsed"],
        files_reused=metrics["files_reused"],
        skipped=metrics["skipped_total"],
        secrets_redacted=metrics["secrets_redacted"],
    )
    return StepResult(outputs=["chunks.jsonl", "stats.json"], metrics=metrics)


def _table(title: str, header: str, rows: dict[str, Any]) -> list[str]:
    lines = [f"{title:<24}{header:>10}"]
    lines += [f"  {key:<22}{value:>10}" for key, value in sorted(rows.items())]
    return lines if rows else [*lines, f"  {'(none)':<22}{'':>10}"]


def format_stats(stats: dict[str, Any]) -> str:
    """A readable table of a mine's stats.json: totals, then counts per language, kind, skip
    reason and redacted-secret kind (zero skip reasons are listed too, so nothing hides)."""
    where = stats.get("commit", "")[:7] or "working files"
    files_by_language = stats.get("files_by_language", {})
    lines = [
        f"source: {stats.get('source', 'git')} ({where})",
        f"files: {stats.get('files_seen', 0)} seen, {stats.get('files_mined', 0)} mined, "
        f"{stats.get('files_with_syntax_errors', 0)} with syntax errors",
        f"chunks: {stats.get('chunks', 0)} ({stats.get('clones', 0)} marked as clones)",
        "",
        f"{'language':<24}{'files':>10}{'chunks':>10}",
    ]
    for lang in sorted(set(files_by_language) | set(stats.get("by_language", {}))):
        chunks = stats.get("by_language", {}).get(lang, 0)
        lines.append(f"  {lang:<22}{files_by_language.get(lang, 0):>10}{chunks:>10}")
    lines += ["", *_table("kind", "chunks", stats.get("by_kind", {}))]
    lines += ["", *_table("skipped (reason)", "files", stats.get("skipped", {}))]
    lines += ["", *_table("secrets redacted (kind)", "count", stats.get("secrets_redacted", {}))]
    return "\n".join(lines)


SPEC = StepSpec(
    name="mine",
    fn=run,
    params=Params,
    needs=(),
    provides="chunks",
    version="2",
    uses_repo=True,
    unkeyed=frozenset({"workers"}),
    libraries=PARSER_DISTRIBUTIONS,
)
