"""The mining engine: classify every entry of a source, reuse cached files, parse the rest.

Results come out one file at a time in path order, so the caller can stream chunks to disk
(memory stays flat on large repos) and mark clones in one pass. Files that must be parsed are
read in bulk and, when there is enough work, parsed by a process pool (fork, or forkserver
when the parent runs other threads) while the main process replays cache hits.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from guardian.core.fsutil import pid_alive
from guardian.mining import LanguageSpec, spec_for_path
from guardian.mining.cache import ParseCache
from guardian.mining.files import FileResult, Task, mine_file
from guardian.mining.secrets import warm_up
from guardian.mining.skips import (
    SKIP_REASONS,
    IgnoreRules,
    generated_by_name,
    is_excluded,
    is_test,
    is_vendored,
    minified_by_name,
)
from guardian.mining.sources import DirSource, Entry, GitSource, blob_id, size_batches

log = structlog.get_logger(__name__)

_WINDOW_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What to mine and how hard to work; mirrors the mine step's params."""

    languages: frozenset[str]
    max_file_bytes: int
    exclude: tuple[str, ...] = ()
    include_tests: bool = True
    redact: bool = True
    workers: int = 0
    parallel_min_bytes: int = 2_000_000


@dataclass
class Counts:
    """Per-run counters the step reports."""

    files_seen: int = 0
    files_parsed: int = 0
    files_reused: int = 0
    parallel_workers: int = 0
    skipped: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(SKIP_REASONS, 0)))
    cache_errors: list[str] = field(default_factory=list)


def classify(entry: Entry, rules: IgnoreRules, settings: Settings) -> str | LanguageSpec:
    """The skip reason for an entry from its path and metadata, or the spec to mine it with."""
    if entry.kind == "submodule":
        return "submodule"
    if entry.kind == "symlink":
        return "symlink"
    if not entry.path.isascii():
        try:
            entry.path.encode("utf-8")
        except UnicodeEncodeError:
            return "not_utf8"
    if rules and rules.ignored(entry.path):
        return "gitignored"
    if is_vendored(entry.path):
        return "vendored"
    if settings.exclude and is_excluded(entry.path, list(settings.exclude)):
        return "excluded"
    spec = spec_for_path(entry.path)
    if spec is None or spec.name not in settings.languages:
        return "unsupported"
    if not settings.include_tests and is_test(entry.path, spec.test_globs):
        return "tests"
    if entry.size > settings.max_file_bytes:
        return "too_large"
    if generated_by_name(entry.path):
        return "generated"
    if minified_by_name(entry.path):
        return "minified"
    return spec


def _workers(settings: Settings) -> int:
    if settings.workers:
        return settings.workers
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 8))


def _exit_when_gone(owner: int) -> None:
    while pid_alive(owner):
        time.sleep(0.2)
    os._exit(1)


def _worker_init(owner: int) -> None:
    """In each pool worker: exit as soon as the process that started the pool is gone, and
    leave Ctrl-C to it. A forkserver worker's parent is the forkserver, which itself lives as
    long as any worker does, so the worker watches the pool's owner by pid."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_gone, args=(owner,), daemon=True).start()


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where it exists, else spawn: never fork, so workers inherit no lock file,
    SQLite handle or signal handler of the run that started them."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["guardian.mining.files", "guardian.mining.secrets"])
        return ctx
    return multiprocessing.get_context("spawn")


class Miner:
    """One mining pass over a source; iterate `results()` once, then read `counts`."""

    def __init__(
        self,
        source: GitSource | DirSource,
        settings: Settings,
        cache: ParseCache,
        force: set[str] | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.cache = cache
        self.force = force
        self.counts = Counts()

    def _plan(self) -> list[tuple[Entry, Path | None, bool]]:
        """(entry, cache file, cached) for every file to mine, in path order; counts skips.

        Plain directories have no blob ids, so each file is read and hashed here; its bytes
        are kept only when it must be parsed.
        """
        entries = self.source.entries()
        rules = self.source.ignore_rules(entries)
        self.counts.skipped.update(self.source.pruned)
        self.counts.files_seen = len(entries) + sum(self.source.pruned.values())
        self._data: dict[str, bytes] = {}
        plan = []
        for entry in entries:
            verdict = classify(entry, rules, self.settings)
            if isinstance(verdict, str):
                self.counts.skipped[verdict] += 1
                continue
            if self.source.plain:
                data = self.source.read([entry])[entry.path]
                entry = Entry(entry.path, entry.kind, len(data), blob_id(data))
                self._data[entry.path] = data
            cache_file = self.cache.file_for(entry.path, entry.oid)
            forced = self.force is not None and entry.path in self.force
            cached = not forced and cache_file is not None and cache_file.is_file()
            if cached:
                self._data.pop(entry.path, None)
            plan.append((entry, cache_file, cached))
        return plan

    def _tasks(self, entries: list[Entry]) -> list[Task]:
        missing = [e for e in entries if e.path not in self._data]
        self._data.update(self.source.read(missing))
        return [
            Task(
                e.path,
                self._data.pop(e.path),
                self.settings.redact,
                self.cache.file_for(e.path, e.oid),
            )
            for e in entries
        ]

    def _windows(self, misses: list[Entry]) -> Iterator[list[Task]]:
        """The files to parse as tasks, read a window of about 64 MiB of source at a time."""
        for window in size_batches(misses, _WINDOW_BYTES):
            yield self._tasks(window)

    def _parse(self, misses: list[Entry], stack: ExitStack) -> Iterator[FileResult]:
        """Results for `misses` in order; with enough work a process pool parses them."""
        workers = min(_workers(self.settings), len(misses))
        size = sum(e.size for e in misses)
        if workers < 2 or size < self.settings.parallel_min_bytes:
            for tasks in self._windows(misses):
                yield from map(mine_file, tasks)
            return
        self.counts.parallel_workers = workers
        warm_up()
        pool = stack.enter_context(
            ProcessPoolExecutor(
                max_workers=workers,
                mp_context=_pool_context(),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        )
        for tasks in self._windows(misses):
            chunksize = max(1, min(16, len(tasks) // (workers * 8)))
            yield from pool.map(mine_file, tasks, chunksize=chunksize)

    def _note(self, result: FileResult) -> FileResult:
        if result.cache_error:
            self.counts.cache_errors.append(result.cache_error)
            log.warning("mine.cache_write_failed", error=result.cache_error)
        for line in result.warnings:
            log.warning("mining.syntax_error", detail=line)
        return result

    def results(self) -> Iterator[FileResult]:
        """Every mined file's result in path order (content skips included, `skip` set)."""
        plan = self._plan()
        misses = [entry for entry, _, cached in plan if not cached]
        with ExitStack() as stack:
            parsed = self._parse(misses, stack)
            for entry, cache_file, cached in plan:
                result = self.cache.load(cache_file) if cached else None
                if result is None and cached:
                    result = self._note(mine_file(self._tasks([entry])[0]))
                    self.counts.files_parsed += 1
                elif result is None:
                    result = self._note(next(parsed))
                    self.counts.files_parsed += 1
                else:
                    self.counts.files_reused += 1
                if result.skip is not None:
                    self.counts.skipped[result.skip] += 1
                yield result
