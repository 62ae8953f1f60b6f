"""The repo watcher on real git repos: inotify, polling, fallback, packed refs, worktrees, fetch."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog import observers

from guardian.daemon.watch import Change, RepoWatcher, WatchedRepo
from guardian.errors import RepoError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits work without a global git config, for the tests and the watcher's fetches."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stripped stdout."""
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(path: Path) -> Path:
    """A fresh repository on branch main with one commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, "init")
    return path


def commit(repo: Path, message: str) -> str:
    """An empty commit on the checked-out branch; returns HEAD."""
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def wait_for(predicate: Callable[[], object], timeout: float) -> bool:
    """Poll `predicate` until true or the deadline; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


class Recorder:
    """Collects the Changes the watcher reports (from its thread)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._lock = threading.Lock()

    def __call__(self, change: Change) -> None:
        with self._lock:
            self.changes.append(change)

    def snapshot(self) -> list[Change]:
        with self._lock:
            return list(self.changes)


Start = Callable[..., tuple[RepoWatcher, Recorder]]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start watchers; each is stopped afterwards, and stop() must return promptly."""
    started: list[RepoWatcher] = []

    def _start(repos: list[WatchedRepo], **kwargs: object) -> tuple[RepoWatcher, Recorder]:
        recorder = Recorder()
        kwargs.setdefault("debounce_seconds", 0.2)
        watcher = RepoWatcher(repos, recorder, **kwargs)  # type: ignore[arg-type]
        watcher.start()
        started.append(watcher)
        return watcher, recorder

    yield _start
    for watcher in started:
        began = time.monotonic()
        watcher.stop()
        assert time.monotonic() - began < 2.5


def test_commit_on_watched_branch_is_one_change(tmp_path: Path, start: Start) -> None:
    repo = make_repo(tmp_path / "r")
    before = git(repo, "rev-parse", "HEAD")
    watcher, seen = start([WatchedRepo(repo, None)], mode="inotify")
    assert watcher.mode == "inotify" and watcher.branch_sha(repo) == before
    assert not wait_for(seen.snapshot, 0.5)  # start() records shas: no event for them
    head = commit(repo, "one")
    assert wait_for(seen.snapshot, 3.0)
    assert not wait_for(lambda: len(seen.snapshot()) > 1, 0.5)
    assert seen.snapshot() == [Change(repo.resolve(), "main", before, head, "inotify")]
    assert watcher.branch_sha(repo) == head


def test_other_branches_checkouts_and_pack_refs_report_nothing(
    tmp_path: Path, start: Start
) -> None:
    repo = make_repo(tmp_path / "r")
    _, seen = start([WatchedRepo(repo, "main")], mode="inotify")
    git(repo, "checkout", "-q", "-b", "other")
    commit(repo, "on other")
    git(repo, "branch", "topic")
    git(repo, "checkout", "-q", "main")
    git(repo, "tag", "-a", "v1", "-m", "v1", "other")
    git(repo, "pack-refs", "--all")
    assert not wait_for(seen.snapshot, 1.5)
    head = commit(repo, "on main")  # the watcher was live all along
    assert wait_for(seen.snapshot, 3.0)
    assert [c.new for c in seen.snapshot()] == [head]


def test_burst_of_commits_is_debounced(tmp_path: Path, start: Start) -> None:
    repo = make_repo(tmp_path / "r")
    _, seen = start([WatchedRepo(repo, None)], mode="inotify", debounce_seconds=0.5)
    assert not wait_for(seen.snapshot, 0.6)  # past start()'s own first look
    for i in range(10):
        head = commit(repo, f"burst {i}")
    git(repo, "commit", "-q", "--amend", "--allow-empty", "-m", "amended")
    head = git(repo, "rev-parse", "HEAD")
    assert wait_for(lambda: seen.snapshot() and seen.snapshot()[-1].new == head, 5.0)
    assert not wait_for(lambda: seen.snapshot()[-1].new != head, 0.7)
    changes = seen.snapshot()
    assert 1 <= len(changes) <= 2 and changes[-1].new == head


def test_poll_mode_detects_a_commit(tmp_path: Path, start: Start) -> None:
    repo = make_repo(tmp_path / "r")
    watcher, seen = start([WatchedRepo(repo, None)], mode="poll", poll_seconds=0.2)
    assert watcher.mode == "poll"
    head = commit(repo, "polled")
    assert wait_for(seen.snapshot, 3.0)
    assert [(c.new, c.source) for c in seen.snapshot()] == [(head, "poll")]


def _no_watches(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_auto_falls_back_to_polling_when_watches_run_out(
    tmp_path: Path, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "r")
    monkeypatch.setattr(observers.Observer, "schedule", _no_watches)
    with capture_logs() as logs:
        watcher, seen = start([WatchedRepo(repo, None)], mode="auto", poll_seconds=0.2)
    assert watcher.mode == "poll"
    warning = next(e for e in logs if e["event"] == "watch.inotify_unavailable")
    assert warning["log_level"] == "warning" and warning["errno"] == errno.ENOSPC
    head = commit(repo, "after fallback")
    assert wait_for(seen.snapshot, 3.0)
    assert [(c.new, c.source) for c in seen.snapshot()] == [(head, "poll")]


def test_inotify_mode_refuses_instead_of_falling_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "r")
    monkeypatch.setattr(observers.Observer, "schedule", _no_watches)
    watcher = RepoWatcher([WatchedRepo(repo, None)], lambda c: None, mode="inotify")
    with pytest.raises(RepoError, match="max_user_watches"):
        watcher.start()
    watcher.stop()


def test_packed_refs_then_commit_is_detected(tmp_path: Path, start: Start) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "tag", "-a", "v1", "-m", "annotated: a peeled ^ line in packed-refs")
    git(repo, "pack-refs", "--all")
    packed_head = git(repo, "rev-parse", "HEAD")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    watcher, seen = start([WatchedRepo(repo, None)], mode="inotify")
    assert watcher.branch_sha(repo) == packed_head  # read from packed-refs
    assert not wait_for(seen.snapshot, 0.4)  # past start()'s own first look
    head = commit(repo, "after pack")
    assert wait_for(seen.snapshot, 3.0)
    git(repo, "pack-refs", "--all")  # the same sha moves into packed-refs: nothing to report
    assert not wait_for(lambda: len(seen.snapshot()) > 1, 1.0)
    assert [(c.old, c.new) for c in seen.snapshot()] == [(packed_head, head)]
    assert watcher.branch_sha(repo) == head


def test_worktree_watches_its_own_branch(tmp_path: Path, start: Start) -> None:
    main = make_repo(tmp_path / "main")
    tree = tmp_path / "tree"
    git(main, "worktree", "add", "-q", "-b", "feature", str(tree))
    watcher, seen = start([WatchedRepo(tree, None)], mode="inotify")
    commit(main, "on main: not ours")
    assert not wait_for(seen.snapshot, 1.0)
    head = commit(tree, "on feature")
    assert wait_for(seen.snapshot, 3.0)
    assert [(c.repo, c.branch, c.new) for c in seen.snapshot()] == [
        (tree.resolve(), "feature", head)
    ]
    assert watcher.branch_sha(tree) == head


def test_fetch_mode_sees_a_push_to_the_remote(tmp_path: Path, start: Start) -> None:
    remote, src = tmp_path / "remote.git", make_repo(tmp_path / "src")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(src, "push", "-q", str(remote), "main")
    git(tmp_path, "clone", "-q", str(remote), "mirror")
    mirror = tmp_path / "mirror"
    spec = WatchedRepo(mirror, None, remote="origin", fetch_minutes=0.01)
    watcher, seen = start([spec], mode="inotify")
    head = commit(src, "pushed")
    git(src, "push", "-q", str(remote), "main")
    assert wait_for(seen.snapshot, 5.0)
    assert [(c.branch, c.new, c.source) for c in seen.snapshot()] == [
        ("origin/main", head, "fetch")
    ]
    assert watcher.branch_sha(mirror) == head != git(mirror, "rev-parse", "main")


def test_stop_ends_a_hanging_fetch(
    tmp_path: Path, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "remote", "add", "origin", "ssh://example.invalid/repo.git")
    pidfile, ssh = tmp_path / "ssh.pid", tmp_path / "fake-ssh"
    ssh.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH", str(ssh))
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    watcher, _ = start([WatchedRepo(repo, None, remote="origin", fetch_minutes=1.0)])
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5.0)
    pid = int(pidfile.read_text())
    began = time.monotonic()
    watcher.stop()
    assert time.monotonic() - began < 2.5

    def gone() -> bool:  # no such process, or a zombie waiting for its reaper
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    assert wait_for(gone, 3.0)  # the whole fetch process group got SIGTERM


def test_unusable_repos_are_refused_before_anything_runs(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoError, match="not a git repository"):
        RepoWatcher([WatchedRepo(plain, None)], lambda c: None).start()
    repo = make_repo(tmp_path / "r")
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(RepoError, match="detached"):
        RepoWatcher([WatchedRepo(repo, None)], lambda c: None).start()
    with pytest.raises(RepoError, match="not a valid"):
        RepoWatcher([WatchedRepo(repo, "../../etc/passwd")], lambda c: None).start()
