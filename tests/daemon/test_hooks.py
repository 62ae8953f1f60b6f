"""Git hooks: they queue a job through a detached `guardian trigger`, return at once, chain
hooks already there, honour core.hooksPath, and uninstall back to exactly what was there."""

from __future__ import annotations

import os
import re
import select
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from guardian.cli import app
from guardian.config.settings import load_config
from guardian.daemon.hooks import (
    CHAIN_SUFFIX,
    HOOK_NAMES,
    HookState,
    Launch,
    hooks_dir,
    install,
    launch_for,
    status,
    uninstall,
)
from guardian.errors import RepoError
from guardian.store.records import JobRecord
from guardian.store.state import StateStore
from tests.helpers_git import make_git_repo

Jobs = list[JobRecord]


def _drain(read_end: int, timeout: float = 30.0) -> None:
    """Block until every process holding the pipe's write end has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], 0.1)
        if ready and not os.read(read_end, 4096):
            return
    raise AssertionError("a background trigger was still running after 30 s")


def run(cmd: list[str], **kw: Any) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `cmd`; return it and its wall time, after the triggers it left behind have exited.

    The child inherits a pipe's write end; git passes it on to the hook and the hook to its
    background trigger, so end-of-file on the read end means they are all done.
    """
    read_end, write_end = os.pipe()
    try:
        start = time.perf_counter()
        proc = subprocess.run(cmd, pass_fds=(write_end,), capture_output=True, text=True, **kw)
        took = time.perf_counter() - start
    finally:
        os.close(write_end)
    try:
        _drain(read_end)
    finally:
        os.close(read_end)
    return proc, took


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc, _ = run(["git", "-C", str(repo), *args])
    assert proc.returncode == 0, proc.stderr
    return proc


def jobs(home: Path) -> Jobs:
    if not (home / "guardian.db").exists():
        return []
    with StateStore(home) as store:
        return store.jobs.listed()


def wait_jobs(home: Path, done: Callable[[Jobs], bool], timeout: float = 20.0) -> Jobs:
    """Poll the jobs table until `done` holds (failing with what was there at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        found = jobs(home)
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs never matched: {found}")
        time.sleep(0.05)


def reasons(job: JobRecord) -> list[str]:
    return [r.split(" ", 1)[1] for r in job.payload.reasons]


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    make_git_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    return tmp_path / "repo"


def _launch() -> Launch:
    return launch_for(load_config(None))


def test_commit_queues_a_job_and_a_second_commit_joins_it(repo: Path, guardian_home: Path) -> None:
    report = install(repo, _launch())
    assert [h.state for h in report.lines] == [HookState.INSTALLED] * len(HOOK_NAMES)
    assert report.hooks_dir == repo / ".git" / "hooks"
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    (job,) = wait_jobs(guardian_home, lambda js: len(js) == 1)
    assert job.status == "queued" and job.repo_path == str(repo)
    assert reasons(job) == ["hook:post-commit"]
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    (joined,) = wait_jobs(guardian_home, lambda js: js[0].payload.triggers == 2)
    assert joined.id == job.id
    assert reasons(joined) == ["hook:post-commit", "hook:post-commit"]


def test_hook_returns_at_once_with_the_daemon_down(
    repo: Path, guardian_home: Path, tmp_path: Path
) -> None:
    real = _launch()
    # a trigger that takes 3 s: a hook that waited for it could not return sooner
    delayed = ("/bin/sh", "-c", 'sleep 3; exec "$@"', "sh", *real.command)
    slow = Launch(delayed, real.env, real.config)
    install(repo, slow)
    hook = repo / ".git" / "hooks" / "post-commit"
    env = {k: v for k, v in os.environ.items() if k != "GUARDIAN_HOME"}
    for _ in range(3):
        proc, took = run([str(hook)], env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == proc.stderr == ""
        assert took < 3, took  # the hook's own cost is a benchmark figure (benchmarks/daemon.py)
    # GUARDIAN_HOME was baked in at install time: the jobs land there without it in the env.
    (job,) = wait_jobs(guardian_home, lambda js: len(js) == 1 and js[0].payload.triggers == 3)
    assert reasons(job) == ["hook:post-commit"] * 3


def test_a_missing_guardian_never_fails_the_hook(repo: Path) -> None:
    install(repo, Launch(("/nonexistent/guardian",)))
    proc, _ = run([str(repo / ".git" / "hooks" / "post-merge"), "0"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


OLD_HOOK = """#!/bin/sh
# someone else's post-rewrite hook
echo "args: $*" >> "{log}"
cat >> "{log}"
exit 1
"""


def test_an_existing_hook_is_chained_and_restored_exactly(
    repo: Path, guardian_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "old-hook.log"
    hook = repo / ".git" / "hooks" / "post-rewrite"
    original = OLD_HOOK.format(log=log).encode()
    hook.write_bytes(original)
    hook.chmod(0o750)
    first = install(repo, _launch())
    assert {h.name: h.state for h in first.lines}["post-rewrite"] == HookState.CHAINED
    again = install(repo, _launch())
    assert [h.state for h in again.lines] == [HookState.UNCHANGED] * len(HOOK_NAMES)
    chained = hook.with_name("post-rewrite" + CHAIN_SUFFIX)
    assert chained.read_bytes() == original
    assert {h.name: h.state for h in status(repo).lines}["post-rewrite"] == HookState.CHAINED

    proc, _ = run([str(hook), "amend"], input="1111 2222\n")
    assert proc.returncode == 1
    assert log.read_text() == "args: amend\n1111 2222\n"

    before = git(repo, "rev-parse", "HEAD").stdout.strip()
    git(repo, "commit", "-q", "--amend", "--allow-empty", "-m", "amended")
    after = git(repo, "rev-parse", "HEAD").stdout.strip()
    assert log.read_text().endswith(f"args: amend\n{before} {after}\n")
    (job,) = wait_jobs(guardian_home, lambda js: len(js) == 1 and js[0].payload.triggers == 3)
    assert sorted(reasons(job)) == ["hook:post-commit", "hook:post-rewrite", "hook:post-rewrite"]

    removed = uninstall(repo)
    assert {h.name: h.state for h in removed.lines}["post-rewrite"] == HookState.RESTORED
    assert hook.read_bytes() == original
    assert stat.S_IMODE(hook.stat().st_mode) == 0o750
    left = sorted(p.name for p in hook.parent.iterdir() if not p.name.endswith(".sample"))
    assert left == ["post-rewrite"]
    assert [h.state for h in uninstall(repo).lines] == [HookState.ABSENT] * 2 + [
        HookState.OTHER,
        HookState.ABSENT,
    ]


def test_a_foreign_hook_with_a_foreign_chained_copy_is_left_alone(repo: Path) -> None:
    folder = repo / ".git" / "hooks"
    (folder / "post-merge").write_text("#!/bin/sh\nexit 0\n")
    (folder / f"post-merge{CHAIN_SUFFIX}").write_text("#!/bin/sh\nexit 2\n")
    report = install(repo, _launch())
    assert {h.name: h.state for h in report.lines}["post-merge"] == HookState.CONFLICT
    assert (folder / "post-merge").read_text() == "#!/bin/sh\nexit 0\n"
    uninstall(repo)
    assert (folder / "post-merge").read_text() == "#!/bin/sh\nexit 0\n"
    assert (folder / f"post-merge{CHAIN_SUFFIX}").read_text() == "#!/bin/sh\nexit 2\n"


def test_core_hooks_path_is_respected(repo: Path, guardian_home: Path) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")
    report = install(repo, _launch())
    assert report.hooks_dir == repo / ".githooks"
    assert sorted(p.name for p in (repo / ".githooks").iterdir()) == sorted(HOOK_NAMES)
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    (job,) = wait_jobs(guardian_home, lambda js: len(js) == 1)
    assert reasons(job) == ["hook:post-commit"]
    git(repo, "commit", "-q", "--amend", "--allow-empty", "-m", "two, amended")
    (job,) = wait_jobs(guardian_home, lambda js: js[0].payload.triggers == 3)
    assert sorted(reasons(job)[1:]) == ["hook:post-commit", "hook:post-rewrite"]
    uninstall(repo)
    assert list((repo / ".githooks").iterdir()) == []


def test_hooks_dir_of_worktrees_and_bare_repos(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    assert hooks_dir(tmp_path / "wt") == repo / ".git" / "hooks"
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    assert hooks_dir(bare) == bare / "hooks"
    git(bare, "config", "core.hooksPath", "shared")
    assert hooks_dir(bare) == bare / "shared"
    with pytest.raises(RepoError, match="not a git repository"):
        hooks_dir(tmp_path)


def test_post_checkout_triggers_on_branch_checkouts_only(repo: Path, guardian_home: Path) -> None:
    install(repo, _launch())
    git(repo, "branch", "other")
    (repo / "a.py").write_text("x = 2\n")
    git(repo, "checkout", "--", "a.py")
    assert (repo / "a.py").read_text() == "x = 1\n"
    assert jobs(guardian_home) == []  # run() waited for anything the hook started
    git(repo, "checkout", "-q", "other")
    (job,) = wait_jobs(guardian_home, lambda js: len(js) == 1)
    assert reasons(job) == ["hook:post-checkout"]


def test_cli_trigger_and_hooks_commands(repo: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    first = cli.invoke(app, ["trigger", str(repo), "--reason", "by hand"])
    assert first.exit_code == 0, first.output
    assert re.fullmatch(
        r"job [0-9a-f]{12} new \(playbook the daemon's for this repo\); no daemon running.*\n",
        first.stdout,
    )
    second = cli.invoke(app, ["trigger", str(repo)])
    assert " joined " in second.stdout and len(second.stdout.splitlines()) == 1
    named = cli.invoke(app, ["trigger", str(repo), "-p", "retrain"])
    assert " new (playbook retrain)" in named.stdout

    bad = cli.invoke(app, ["trigger", str(tmp_path)])
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr == f"error: {tmp_path}: not a git repository\n"
    bad = cli.invoke(app, ["hooks", "install", str(tmp_path / "missing")])
    assert bad.exit_code == 1 and len(bad.stderr.splitlines()) == 1

    nothing = cli.invoke(app, ["hooks", "uninstall", str(repo)])
    assert nothing.exit_code == 0
    assert (
        nothing.stdout == f"no guardian hooks in {repo / '.git' / 'hooks'}: nothing to uninstall\n"
    )
    assert cli.invoke(app, ["hooks", "install", str(repo)]).exit_code == 0
    shown = cli.invoke(app, ["hooks", "status", str(repo)])
    assert shown.exit_code == 0
    assert [line.split()[:2] for line in shown.stdout.splitlines()[1:]] == [
        [name, "installed"] for name in HOOK_NAMES
    ]
    gone = cli.invoke(app, ["hooks", "uninstall", str(repo)])
    assert gone.stdout.count("removed") == len(HOOK_NAMES)
