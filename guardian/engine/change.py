"""What changed since the model in service was trained, and whether that warrants a run.

`change_since` measures the change from the champion's commit to HEAD: commits, files,
lines, and functions — a function counts when it was added, removed, or its tokens changed
(tree-sitter units compared by qualname and normalised hash, so a comment or layout edit
is not a changed function). `decide` is pure: the change, the playbook's trigger policy, the
event and the time since the last run in, (run?, why) out; the daemon and `guardian plan`
both call it, so what the plan says is what the daemon does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from guardian.config.skills import TriggerPolicy
from guardian.core.gitutil import (
    changed_files,
    changed_lines,
    count_commits,
    file_at,
    head_and_tagged,
)
from guardian.errors import RepoError
from guardian.mining import LanguageSpec, spec_for_path
from guardian.mining.core import extract_units

Event = str  # commit | schedule | manual | tag


@dataclass(frozen=True)
class ChangeSummary:
    """The change from `since` (None: nothing in service yet) to `head`."""

    head: str
    since: str | None
    commits: int = 0
    files: list[str] = field(default_factory=list)
    lines: int = 0
    functions: list[str] = field(default_factory=list)  # path:qualname
    tagged: bool = False


def event_of(reason: str) -> Event:
    """The trigger event a queued reason stands for (hook/watch: commit, cron: schedule)."""
    head = reason.split(":", 1)[0].split(" ", 1)[0]
    if head in ("hook", "watch", "fetch", "inotify", "poll"):  # git hooks and the watcher
        return "commit"
    if head == "cron":
        return "schedule"
    if head == "tag":
        return "tag"
    return "manual"


def change_since(repo: Path, since: str | None, paths: list[str]) -> ChangeSummary:
    """Measure HEAD against `since` (limited to `paths` globs when given)."""
    head, tagged = head_and_tagged(repo)
    if since is None or since == head:
        return ChangeSummary(head, since, tagged=tagged)
    try:
        commits = count_commits(repo, since, head)
    except RepoError:  # since was rewritten away (force push): measure from scratch
        return ChangeSummary(head, None, tagged=tagged)
    files = changed_files(repo, since, head, paths)
    functions: list[str] = []
    for path in files:
        functions += _changed_functions(repo, since, head, path)
    lines = changed_lines(repo, since, paths)
    return ChangeSummary(head, since, commits, files, lines, functions, tagged)


def _changed_functions(repo: Path, old: str, new: str, path: str) -> list[str]:
    spec = spec_for_path(path)
    if spec is None:
        return []
    before, after = _units(repo, old, path, spec), _units(repo, new, path, spec)
    names = sorted(set(before) | set(after))
    return [f"{path}:{q}" for q in names if before.get(q) != after.get(q)]


def _units(repo: Path, rev: str, path: str, spec: LanguageSpec) -> dict[str, str]:
    source = file_at(repo, rev, path)
    if source is None:
        return {}
    units = extract_units(source, path, spec, warnings=[])
    return {u.qualname: u.norm_hash for u in units}


def decide(
    change: ChangeSummary,
    policy: TriggerPolicy,
    event: Event,
    minutes_since_last: float | None,
) -> tuple[bool, str]:
    """Run or not, and why, for one event under the playbook's trigger policy."""
    if event == "manual":
        return True, "asked for by hand"
    if event not in policy.events and not (event == "schedule" and policy.schedule):
        if not (event == "tag" and policy.on_tag):
            return False, f"'{event}' is not one of this playbook's trigger events"
    if change.since is None:
        return True, "no model in service yet for this repo"
    if change.commits == 0:
        return False, f"HEAD {change.head[:7]} is the commit the model in service was trained on"
    if (event == "tag" or policy.on_tag) and change.tagged:
        return True, f"HEAD {change.head[:7]} is tagged"
    waited = minutes_since_last
    if waited is not None and waited < policy.min_interval_minutes:
        return False, (
            f"the last run was {waited:.0f} min ago (min_interval_minutes "
            f"{policy.min_interval_minutes:g})"
        )
    if event == "schedule":
        return True, f"scheduled ({policy.schedule}); {_size(change)} since {change.since[:7]}"
    if change.lines < policy.min_changed_lines:
        return False, f"{change.lines} changed lines < min_changed_lines {policy.min_changed_lines}"
    if len(change.functions) < policy.min_changed_functions:
        return False, (
            f"{len(change.functions)} changed functions < min_changed_functions "
            f"{policy.min_changed_functions}"
        )
    return True, f"{_size(change)} since {change.since[:7]}"


def _size(change: ChangeSummary) -> str:
    return (
        f"{change.commits} commits, {len(change.files)} files, {change.lines} lines, "
        f"{len(change.functions)} functions changed"
    )
