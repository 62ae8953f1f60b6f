"""The daemon's snapshot file: written with the keys its readers use, read back by engine."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from guardian.config.settings import GuardianConfig, RepoConfig
from guardian.daemon.status import snapshot, write_status
from guardian.engine.status import STATUS_NAME, status
from guardian.store.records import JobRecord


def test_snapshot_is_written_and_read_back(tmp_path: Path, guardian_home: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    config = GuardianConfig(
        repos=[RepoConfig(path=str(repo), playbook="quick", branch="main")],
        source=tmp_path / "config.yaml",
    )
    said = {"at": 1234.5, "run": True, "why": "3 changed lines"}
    worker = SimpleNamespace(
        job_id="j1",
        job=JobRecord(
            id="j1", kind="run", status="running", repo_path=str(repo), created_at="2026"
        ),
        proc=SimpleNamespace(pid=4321),
        started=99.0,
    )
    daemon = SimpleNamespace(
        config=config,
        state="running",
        _started=42.0,
        decisions={str(repo.resolve()): said},
        watcher=SimpleNamespace(mode="inotify"),
        workers={"j1": worker},
        cron=None,
    )
    doc = snapshot(daemon)
    assert set(doc) == {
        "state", "pid", "started_at", "updated_at", "config", "watch_mode", "repos", "workers",
        "schedules", "torch_loaded",
    }  # fmt: skip
    assert doc["repos"] == [
        {"path": str(repo.resolve()), "playbook": "quick", "branch": "main", "last_decision": said}
    ]
    assert doc["workers"] == [
        {"job": "j1", "kind": "run", "repo": str(repo), "pid": 4321, "since": 99.0}
    ]
    assert (doc["pid"], doc["started_at"]) == (os.getpid(), 42.0)
    assert doc["config"] == str(tmp_path / "config.yaml")

    guardian_home.mkdir(parents=True)
    write_status(guardian_home, doc)
    assert json.loads((guardian_home / STATUS_NAME).read_text()) == doc
    found = status(guardian_home)
    assert (found.state, found.running, found.watch_mode) == ("running", True, "inotify")
    assert found.repos[0].last_decision is not None
    assert found.repos[0].last_decision.why == "3 changed lines"
    assert [(w.job, w.pid) for w in found.workers] == [("j1", 4321)]
