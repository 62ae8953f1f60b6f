"""The change since the model in service, and the pure trigger decision the daemon and
`guardian plan` share: functions count only when their tokens change."""

from __future__ import annotations

from pathlib import Path

from guardian.config.skills import TriggerPolicy
from guardian.engine.change import ChangeSummary, change_since, decide, event_of
from tests.helpers_git import commit_files, make_git_repo

SRC = """def add(a, b):
    return a + b


def sub(a, b):
    return a - b


class Box:
    def get(self):
        return 1
"""


def test_changed_functions_ignore_comments_and_layout(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "r", {"m.py": SRC, "notes.txt": "x\n"})
    base = repo.head.commit.hexsha
    edited = SRC.replace("return a + b", "return a + b  # plus").replace("return 1", "return 2")
    commit_files(repo, {"m.py": edited + "\n\ndef new():\n    pass\n"}, "edit")
    commit_files(repo, {"notes.txt": "y\n"}, "notes")
    change = change_since(tmp_path / "r", base, [])
    assert change.since == base and change.commits == 2
    assert change.files == ["m.py", "notes.txt"]
    # add: only a comment (not a change); Box.get: body changed (and so Box); new: added
    assert change.functions == ["m.py:Box", "m.py:Box.get", "m.py:new"]
    assert change.lines == 10  # 2 edited lines (- and + each), 4 added, notes.txt - and +
    only_py = change_since(tmp_path / "r", base, ["*.py"])
    assert only_py.files == ["m.py"] and only_py.lines < change.lines
    same = change_since(tmp_path / "r", change.head, [])
    assert same.commits == 0 and same.functions == []


def _change(**kw: object) -> ChangeSummary:
    base = {"head": "b" * 40, "since": "a" * 40, "commits": 1, "lines": 10, "functions": ["f"]}
    return ChangeSummary(**{**base, **kw})  # type: ignore[arg-type]


def test_decide_follows_the_policy() -> None:
    policy = TriggerPolicy(min_changed_lines=5, min_changed_functions=2, min_interval_minutes=30)
    assert decide(_change(since=None), policy, "commit", None) == (
        True,
        "no model in service yet for this repo",
    )
    run, why = decide(_change(commits=0), policy, "commit", None)
    assert not run and "is the commit the model in service was trained on" in why
    run, why = decide(_change(), policy, "commit", 10.0)
    assert not run and "10 min ago" in why
    run, why = decide(_change(lines=3), policy, "commit", 60.0)
    assert not run and "3 changed lines < min_changed_lines 5" in why
    run, why = decide(_change(), policy, "commit", 60.0)
    assert not run and "1 changed functions < min_changed_functions 2" in why
    assert decide(_change(functions=["f", "g"]), policy, "commit", 60.0)[0]
    assert decide(_change(lines=0), policy, "manual", 0.0)[0]  # by hand: always
    run, why = decide(_change(), policy, "schedule", 60.0)
    assert not run and "'schedule' is not one of" in why
    nightly = TriggerPolicy(events=["schedule"], schedule="0 3 * * *")
    assert decide(_change(lines=1), nightly, "schedule", 600.0)[0]
    assert not decide(_change(), nightly, "commit", 600.0)[0]
    tagged = TriggerPolicy(min_changed_lines=1000, on_tag=True)
    assert decide(_change(tagged=True), tagged, "commit", 60.0) == (
        True,
        f"HEAD {'b' * 7} is tagged",
    )
    assert not decide(_change(tagged=False), tagged, "commit", 60.0)[0]


def test_events_of_reasons() -> None:
    reasons = ("hook:post-commit", "inotify:ab12", "poll:ab12", "fetch:ab12", "cron:nightly")
    assert [event_of(r) for r in reasons] == ["commit"] * 4 + ["schedule"]
    assert [event_of(r) for r in ("cli", "api", "by hand")] == ["manual"] * 3
