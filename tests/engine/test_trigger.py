"""engine.trigger: the playbook config.yaml names for a repo, and a trigger that queues a job
(joining a queued one) and wakes a daemon only when one listens on the socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from guardian.config.settings import GuardianConfig, RepoConfig
from guardian.engine.trigger import Triggered, playbook_for, socket_path, trigger
from guardian.errors import RepoError
from guardian.store.state import StateStore
from tests.helpers_git import make_git_repo


def test_playbook_for_matches_relative_and_home_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    cfg = GuardianConfig(
        repos=[RepoConfig(path="one", playbook="quick"), RepoConfig(path="~/two", playbook="deep")],
        source=tmp_path / "config.yaml",
    )
    assert playbook_for(cfg, tmp_path / "one") == "quick"
    assert playbook_for(cfg, tmp_path / "two") == "deep"
    assert playbook_for(cfg, tmp_path) is None


def test_trigger_queues_joins_and_wakes_a_listening_daemon(
    tmp_path: Path, guardian_home: Path
) -> None:
    repo = tmp_path / "repo"
    make_git_repo(repo, {"a.py": "x = 1\n"})
    cfg = GuardianConfig(repos=[RepoConfig(path=str(repo), playbook="quick")])

    first = trigger(cfg, repo, "by hand")
    assert isinstance(first, Triggered)
    assert (first.joined, first.playbook, first.woke) == (False, "quick", False)

    guardian_home.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(socket_path(guardian_home)))
        second = trigger(cfg, repo, "again")
        assert listener.recv(64) == b"wake"
    assert (second.job_id, second.joined, second.woke) == (first.job_id, True, True)
    assert second.model_dump() == {
        "job_id": first.job_id,
        "joined": True,
        "playbook": "quick",
        "woke": True,
    }
    with StateStore(guardian_home) as store:
        (job,) = store.jobs.listed()
    assert job.id == first.job_id and job.payload.triggers == 2

    with pytest.raises(RepoError, match="not a git repository"):
        trigger(cfg, tmp_path, "nowhere")
