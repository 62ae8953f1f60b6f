"""Watching: report new commits on each repo's watched branch (watchdog on `.git`, or polling).

Watches `refs/heads/<branch>`, or `refs/remotes/<remote>/<branch>` when a remote is set (a mirror,
fetched every `fetch_minutes`); refs are read from files (loose ref, then packed-refs).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import structlog
from watchdog import events as ev
from watchdog import observers
from watchdog.observers.api import BaseObserver

from guardian.core.gitutil import FetchProcess, start_fetch, stop_fetch, wait_fetch
from guardian.errors import RepoError

log = structlog.get_logger(__name__)

SAFETY_POLL_SECONDS = 60.0
MAX_DELAY_WINDOWS = 5  # a burst that never pauses is still reported after this many windows
FETCH_TIMEOUT_SECONDS = 300.0
JOIN_SECONDS = 2.0
_EVENTS: list[type[ev.FileSystemEvent]] = [
    ev.FileCreatedEvent, ev.FileMovedEvent, ev.FileDeletedEvent, ev.FileClosedEvent,
    ev.DirCreatedEvent, ev.DirMovedEvent, ev.DirDeletedEvent,
]  # fmt: skip
_BAD_REF = re.compile(r"^[-/.]|\.\.|//|/\.|@\{|[\x00-\x20~^:?*\[\\\x7f]|\.lock$|/$")
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclass(frozen=True)
class WatchedRepo:
    """One repository to watch: its work tree, branch, and optional remote to fetch."""

    path: Path
    branch: str | None
    remote: str | None = None
    fetch_minutes: float = 0.0


@dataclass(frozen=True)
class Change:
    """The watched branch of `repo` moved from `old` to `new` (seen by `source`)."""

    repo: Path
    branch: str
    old: str | None
    new: str
    source: str


def _read(path: Path) -> str | None:
    """A small file's stripped text, or None when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _git_dirs(path: Path) -> tuple[Path, Path]:
    """The git dir and common dir of the work tree (or bare repo) at `path`."""
    dotgit = path / ".git"
    if dotgit.is_dir():
        gitdir = dotgit
    elif dotgit.is_file() and (_read(dotgit) or "").startswith("gitdir:"):
        gitdir = path / (_read(dotgit) or "").removeprefix("gitdir:").strip()
    elif (path / "HEAD").is_file() and (path / "objects").is_dir():
        gitdir = path
    else:
        raise RepoError(f"{path}: not a git repository (no .git here)")
    common, gitdir = _read(gitdir / "commondir"), gitdir.resolve()
    return gitdir, (gitdir / common).resolve() if common else gitdir


class _Repo(ev.FileSystemEventHandler):
    """One watched repository: where its refs live, which ref, the last sha reported."""

    def __init__(self, spec: WatchedRepo, notify: Callable[[Path, str], None]) -> None:
        self.spec, self.path, self._notify = spec, spec.path.expanduser().resolve(), notify
        self.gitdir, self.common = _git_dirs(self.path)
        if (self.common / "reftable").is_dir():
            raise RepoError(f"{self.path}: reftable ref storage is not supported; use files refs")
        self._packed: tuple[tuple[int, int, int], str | None] | None = None  # (stat, sha)
        self.ref, self.label = self._watched_ref()
        self.last = self.polled = self.sha()

    def _watched_ref(self) -> tuple[str, str]:
        """The full ref name to watch and the short name reported in Change.branch."""
        remote, branch = self.spec.remote, self.spec.branch
        if branch is None:  # the branch checked out now
            head = _read(self.gitdir / "HEAD") or ""
            if not head.startswith("ref: refs/heads/"):
                raise RepoError(f"{self.path}: HEAD is detached; set `branch` for this repo")
            branch = head.removeprefix("ref: ")
        branch = branch.removeprefix("refs/heads/")
        for name in (branch, remote or "x"):
            if _BAD_REF.search(name):
                raise RepoError(f"{self.path}: {name!r} is not a valid branch or remote name")
        if remote:
            return f"refs/remotes/{remote}/{branch}", f"{remote}/{branch}"
        return f"refs/heads/{branch}", branch

    def sha(self) -> str | None:
        """The watched ref's current sha, read from disk (None when it does not exist)."""
        text = _read(self.common / self.ref)  # a symbolic branch (rare) reads as missing
        if text is None:
            return self._packed_sha()
        return text if _SHA.fullmatch(text) else None

    def _packed_sha(self) -> str | None:
        """The ref's sha in packed-refs, rescanned only when the file changed."""
        packed = self.common / "packed-refs"
        try:
            st = packed.stat()
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._packed and self._packed[0] == sig:
                return self._packed[1]
            found = None
            with packed.open(encoding="utf-8", errors="replace") as fh:
                for line in fh:  # "<sha> <ref>" lines; "#" header and "^" peeled lines skipped
                    sha, _, name = line.rstrip("\n").partition(" ")
                    if name == self.ref and _SHA.fullmatch(sha):
                        found = sha
                        break
        except OSError:
            return None
        self._packed = (sig, found)
        return found

    def watch_dirs(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) pairs whose events can mean the watched ref moved."""
        refs = self.common / "refs"
        root = (self.common / self.ref).parent
        while root != refs and not root.is_dir():
            root = root.parent
        return [(self.common, False), (root, True)]

    def on_any_event(self, event: ev.FileSystemEvent) -> None:
        """A watchdog event: notify the watcher when it may have moved this repo's refs."""
        refs, packed = str(self.common / "refs") + os.sep, str(self.common / "packed-refs")
        for path in map(os.fsdecode, (event.src_path, event.dest_path)):
            if not path.endswith(".lock") and (path == packed or path.startswith(refs)):
                return self._notify(self.path, "inotify")


class RepoWatcher:
    """Calls `on_change` (from a watcher thread) when a repo's watched branch moves."""

    def __init__(
        self,
        repos: list[WatchedRepo],
        on_change: Callable[[Change], None],
        *,
        mode: str = "auto",
        poll_seconds: float = 10.0,
        debounce_seconds: float = 1.0,
    ) -> None:
        if mode not in ("auto", "inotify", "poll") or poll_seconds <= 0 or debounce_seconds < 0:
            raise ValueError(f"bad watch settings: {mode=} {poll_seconds=} {debounce_seconds=}")
        self._specs, self._on_change, self._requested = list(repos), on_change, mode
        self._mode = "poll" if mode == "poll" else "inotify"
        self._poll, self._debounce = poll_seconds, debounce_seconds
        self._repos: dict[Path, _Repo] = {}
        self._cond = threading.Condition()
        self._reporting = threading.Lock()
        self._pending: dict[Path, tuple[float, float, str]] = {}  # first, last seen, source
        self._procs: dict[Path, FetchProcess] = {}  # running fetches
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._observer: BaseObserver | None = None

    @property
    def mode(self) -> str:
        """The mode in use: "inotify" or "poll" (after any fallback)."""
        return self._mode

    def branch_sha(self, repo: Path) -> str | None:
        """The current sha of `repo`'s watched branch (None if unknown or missing)."""
        found = self._repos.get(repo.expanduser().resolve())
        return found.sha() if found else None

    def start(self) -> None:
        """Record every repo's current sha (no event for it) and start watching."""
        if self._repos:
            raise RuntimeError("RepoWatcher already started")
        # a RepoError (not a repo, detached HEAD, bad name) is raised before anything runs
        repos = [_Repo(spec, self._signal) for spec in self._specs]
        self._repos = {r.path: r for r in repos}
        if self._mode == "inotify":
            self._start_observer()
        loops: list[Callable[[], None]] = [self._dispatch_loop, self._poll_loop]
        loops += [
            partial(self._fetch_loop, r) for r in repos if r.spec.remote and r.spec.fetch_minutes
        ]
        self._threads = [
            threading.Thread(target=f, name="guardian-watch", daemon=True) for f in loops
        ]
        for thread in self._threads:
            thread.start()
        for r in repos:
            self._signal(r.path, self._mode)  # a commit made while we were starting
        log.info("watch.started", repos=len(self._repos), mode=self._mode)

    def stop(self) -> None:
        """Stop observers, polling and fetches; join them within about JOIN_SECONDS."""
        with self._cond:
            self._stop.set()
            procs = list(self._procs.values())
            self._cond.notify_all()
        for proc in procs:
            stop_fetch(proc)
        threads = list(self._threads)
        if self._observer is not None:
            self._observer.stop()
            threads.append(self._observer)
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.05, deadline - time.monotonic()))
        self._threads, self._observer = [], None

    def _start_observer(self) -> None:
        """Schedule watchdog watches; in auto mode fall back to polling on OSError."""
        repo: Path | None = None
        observer: BaseObserver | None = None
        try:
            observer = observers.Observer()
            observer.start()
            for r in self._repos.values():
                repo = r.path
                for path, recursive in r.watch_dirs():
                    observer.schedule(r, str(path), recursive=recursive, event_filter=_EVENTS)
        except OSError as exc:
            if observer is not None:
                observer.stop()  # closes the inotify fd: every watch it holds is freed
            hint = "raise fs.inotify.max_user_watches/max_user_instances or set daemon.watch: poll"
            if self._requested == "inotify":
                raise RepoError(f"{repo}: cannot watch with inotify ({exc}); {hint}") from exc
            log.warning(
                "watch.inotify_unavailable", repo=str(repo), error=str(exc), errno=exc.errno,
                fallback="poll", poll_seconds=self._poll, hint=hint,
            )  # fmt: skip
            self._mode = "poll"
            return
        self._observer = observer

    def _signal(self, key: Path, source: str) -> None:
        """Note activity on a repo; the dispatcher re-reads it once the burst settles."""
        now = time.monotonic()
        with self._cond:
            source = "fetch" if key in self._procs else source
            first, _, was = self._pending.get(key, (now, now, source))
            self._pending[key] = (first, now, "fetch" if "fetch" in (was, source) else was)
            self._cond.notify()

    def _take_due(self) -> tuple[list[tuple[Path, str]], float | None]:
        """Pop the pending repos that are due; also how long until the next one is."""
        now, due, wait = time.monotonic(), [], None
        for key, (first, last, source) in list(self._pending.items()):
            cap = first + self._debounce * MAX_DELAY_WINDOWS
            left = min(last + self._debounce, cap) - now
            if left <= 0:
                due.append((key, source))
                del self._pending[key]
            else:
                wait = left if wait is None else min(wait, left)
        return due, wait

    def _dispatch_loop(self) -> None:
        """Report due repos; sleeps on the condition while nothing is pending."""
        while not self._stop.is_set():
            with self._cond:
                due, wait = self._take_due()
                if not due:
                    self._cond.wait(wait)
                    continue
            for key, source in due:
                self._report(self._repos[key], source)

    def _report(self, r: _Repo, source: str) -> None:
        """Call on_change if the watched ref now differs from the last sha reported."""
        with self._reporting:  # the poll and dispatch threads both report
            new = r.sha()
            if new is None or new == r.last:
                return
            change, r.last = Change(r.path, r.label, r.last, new, source), new
        log.info("watch.change", repo=str(r.path), branch=r.label, new=new, source=source)
        try:
            self._on_change(change)
        except Exception:
            log.exception("watch.callback_failed", repo=str(r.path))

    def _poll_loop(self) -> None:
        """Re-read every sha each poll period (a slow safety net in inotify mode)."""
        interval = self._poll if self._mode == "poll" else max(SAFETY_POLL_SECONDS, self._poll)
        while not self._stop.wait(interval):
            for r in self._repos.values():
                sha = r.sha()
                if sha != r.polled:
                    r.polled = sha
                    if sha is not None and sha != r.last and self._mode == "poll":
                        self._report(r, "poll")  # the poll period already spaces reports
                    elif sha is not None and sha != r.last:
                        self._signal(r.path, "poll")

    def _fetch_loop(self, r: _Repo) -> None:
        """`git fetch <remote>` now and every fetch_minutes; failures are logged, never raised."""
        while True:
            with self._cond:
                if self._stop.is_set():
                    return
                try:
                    proc = start_fetch(r.path, str(r.spec.remote))
                except OSError as exc:  # no git to run: log once, stop fetching this repo
                    log.warning("watch.fetch_failed", repo=str(r.path), error=str(exc))
                    return
                self._procs[r.path] = proc
            try:
                code, err = wait_fetch(proc, FETCH_TIMEOUT_SECONDS)
            finally:
                with self._cond:
                    self._procs.pop(r.path, None)
            if code != 0 and not self._stop.is_set():
                log.warning(
                    "watch.fetch_failed", repo=str(r.path), remote=r.spec.remote,
                    code=code, error=err[-300:],
                )  # fmt: skip
            self._signal(r.path, "fetch")
            if self._stop.wait(r.spec.fetch_minutes * 60.0):
                return
