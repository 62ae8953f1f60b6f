"""Regressions for the reliability issue: each numbered case as a new user met it.

Every case runs the real CLI in a subprocess and checks the exit code, that stderr is one
`error:` line (no traceback), and that nothing the user had was lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers_git import make_git_repo

ROOT = Path(__file__).resolve().parents[2]


def guardian(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guardian", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def one_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single error line of a failed command, checked to contain every needle."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def samples_file(path: Path, n: int = 12, empty: bool = False) -> Path:
    rows = [
        {
            "input": "" if empty else f"What does `f{i}` return?",
            "output": "" if empty else f"`f{i}` returns {i}.",
            "metadata": {"split": "train" if i % 4 else "test"},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    body = 'def add_{i}(a, b):\n    """Add a and b, then {i}."""\n    return a + b\n'
    files = {f"pkg/mod{i}.py": body.format(i=i) for i in range(4)}
    make_git_repo(tmp_path / "repo", files)
    return tmp_path / "repo"


# 1. --out never deletes what guardian did not write ---------------------------------------
def test_train_refuses_a_foreign_out_dir_and_keeps_its_files(
    tmp_path: Path, tiny_base: Path
) -> None:
    v = tmp_path / "v"
    v.mkdir()
    data = samples_file(v / "data.jsonl")
    (v / "notes.txt").write_text("keep")
    proc = guardian("train", str(data), "--out", str(v), "--base", str(tiny_base), "--dry-run")
    one_error(proc, str(v), "guardian did not write", "refusing")
    assert sorted(p.name for p in v.iterdir()) == ["data.jsonl", "notes.txt"]
    assert (v / "notes.txt").read_text() == "keep"

    proc = guardian("train", str(data), "--out", ".", "--base", str(tiny_base), "--dry-run", cwd=v)
    one_error(proc, "refusing")
    assert sorted(p.name for p in v.iterdir()) == ["data.jsonl", "notes.txt"]


def test_train_replaces_only_its_own_earlier_output(tmp_path: Path, tiny_base: Path) -> None:
    data = samples_file(tmp_path / "data.jsonl")
    out = tmp_path / "plan"
    args = ("train", str(data), "--out", str(out), "--base", str(tiny_base), "--dry-run")
    assert guardian(*args).returncode == 0
    first = (out / "train_plan.json").stat().st_mtime_ns
    assert guardian(*args).returncode == 0, "a guardian output may be replaced"
    assert (out / "train_plan.json").stat().st_mtime_ns != first
    (out / "mine.txt").write_text("user file")
    one_error(guardian(*args), "mine.txt", "refusing")
    assert (out / "mine.txt").read_text() == "user file"
    (out / "mine.txt").unlink()
    inside = samples_file(out / "data.jsonl")
    one_error(
        guardian("train", str(inside), "--out", str(out), "--base", str(tiny_base), "--dry-run"),
        "refusing",
    )
    assert inside.is_file()


# 4. interrupted commands leave no temp files, in /tmp or the state dir -----------------
def test_sigterm_during_train_cleans_its_scratch(
    tmp_path: Path, tiny_base: Path, guardian_home: Path
) -> None:
    data = samples_file(tmp_path / "data.jsonl", n=64)
    tmpdir = tmp_path / "systmp"
    tmpdir.mkdir()
    cmd = [sys.executable, "-m", "guardian", "train", str(data), "--out", str(tmp_path / "m")]
    cmd += ["--base", str(tiny_base), "--max-steps", "100000"]
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    scratch = guardian_home / "tmp"
    deadline = time.time() + 120
    while time.time() < deadline and not list(scratch.glob("train.*/model/train_plan.json")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err.decode()
    assert not list(scratch.iterdir()), "scratch left behind"
    assert not list(tmpdir.iterdir()), "temp files in TMPDIR"
    assert not (tmp_path / "m").exists()


def test_a_killed_commands_scratch_is_swept_by_the_next(
    tmp_path: Path, repo: Path, guardian_home: Path
) -> None:
    stale = guardian_home / "tmp" / "mine.999999999.abcdefgh"
    stale.mkdir(parents=True)
    (stale / "chunks.jsonl").write_text("half")
    assert guardian("mine", str(repo), "--out", str(tmp_path / "c.jsonl")).returncode == 0
    assert not stale.exists()


# 5. one line instead of a traceback -----------------------------------------------------
def test_out_paths_that_cannot_be_written_fail_before_any_work(
    tmp_path: Path, repo: Path, tiny_base: Path
) -> None:
    a_dir = tmp_path / "a-dir"
    a_dir.mkdir()
    chunks = tmp_path / "c.jsonl"
    one_error(guardian("mine", str(repo), "--out", str(a_dir)), "is a directory")
    assert guardian("mine", str(repo), "--out", str(chunks)).returncode == 0
    one_error(guardian("synthesize", str(chunks), "--out", str(a_dir)), "is a directory")
    data = samples_file(tmp_path / "data.jsonl")
    one_error(guardian("validate-data", str(data), "--card", str(a_dir)), "is a directory")
    model = tmp_path / "model"
    args = ("train", str(data), "--out", str(model), "--base", str(tiny_base))
    assert guardian(*args, "--max-steps", "1").returncode == 0
    proc = guardian("evaluate", str(model), "--data", str(data), "--out", str(a_dir))
    one_error(proc, "is a directory")
    assert "evaluate scored" not in proc.stderr, "it computed before checking --out"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(guardian("mine", str(repo), "--out", str(blocker / "c.jsonl")), "not a directory")


def test_evaluate_refuses_a_dir_that_is_not_a_train_output(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "adapter").mkdir(parents=True)
    data = samples_file(tmp_path / "data.jsonl")
    args = ("evaluate", str(model), "--data", str(data), "--out", str(tmp_path / "e.json"))
    one_error(
        guardian(*args), f"{model}: not a trained model dir", "adapter_config.json", "[model]"
    )
    (model / "adapter" / "adapter_config.json").write_text("{}")
    proc = guardian(*args, "--baseline", str(tmp_path))
    one_error(proc, f"{tmp_path}: not a trained model dir", "[--baseline]")


def test_non_utf8_jsonl_is_one_line(tmp_path: Path, tiny_base: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"input": "q", "output": "an answer"}\n{"input": "\xff\xfe"}\n')
    one_error(guardian("validate-data", str(bad)), f"{bad}:2", "not UTF-8")
    proc = guardian("train", str(bad), "--out", str(tmp_path / "m"), "--base", str(tiny_base))
    one_error(proc, f"{bad}:2", "not UTF-8")


def test_report_is_rendered_from_state_not_read_back(guardian_home: Path) -> None:
    from guardian.store.state import StateStore

    with StateStore(guardian_home) as store:
        repo_id = store.db.ensure_repo(guardian_home, "r")
        run_id = store.runs.start(repo_id, "p", "c" * 40)
    (guardian_home / "reports" / run_id).mkdir(parents=True)
    (guardian_home / "reports" / run_id / "report.json").write_text('{"run_id": ')
    shown = guardian("report", run_id, "--format", "json")  # a damaged view changes nothing
    assert shown.returncode == 0, shown.stderr
    rep = json.loads(shown.stdout)
    assert rep["run_id"] == run_id and rep["status"] == "running" and rep["commit"] == "c" * 40
    one_error(guardian("report", "20990101T000000Z-abcdef"), "not in the state")
    one_error(guardian("report", "../../etc"), "not a run id")


def test_corrupt_state_db_and_home_that_is_a_file(tmp_path: Path, guardian_home: Path) -> None:
    from guardian.store.state import StateStore

    with StateStore(guardian_home) as store:
        for i in range(50):
            store.db.ensure_repo(tmp_path / f"r{i}", f"r{i}")
    db = guardian_home / "guardian.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    raw = bytearray(db.read_bytes())
    page = int.from_bytes(raw[16:18], "big")
    raw[page:] = b"\xa5" * (len(raw) - page)  # every page past the first (header + schema)
    db.write_bytes(bytes(raw))
    proc = guardian("runs")
    one_error(proc, "state database")
    home_file = tmp_path / "home-file"
    home_file.write_text("not a dir")
    one_error(guardian("runs", env={"GUARDIAN_HOME": str(home_file)}), "is a file")


def test_garbage_bases_and_adapters_are_one_line(tmp_path: Path, tiny_base: Path) -> None:
    data = samples_file(tmp_path / "data.jsonl")
    gguf = tmp_path / "junk.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(64))
    args = ("train", str(data), "--out", str(tmp_path / "m1"), "--dry-run", "--base")
    one_error(guardian(*args, str(gguf)), "junk.gguf")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{not json")
    (hf / "model.safetensors").write_bytes(b"junk")
    one_error(guardian(*args, str(hf)), str(hf))
    model = tmp_path / "model"
    tr = ("train", str(data), "--out", str(model), "--base", str(tiny_base), "--max-steps", "1")
    assert guardian(*tr).returncode == 0
    (model / "adapter" / "adapter_model.safetensors").unlink()
    proc = guardian("evaluate", str(model), "--data", str(data), "--out", str(tmp_path / "e.json"))
    one_error(proc, "no adapter weights")


# 7. one config precedence, --config on every command ------------------------------------
def test_foreign_config_yaml_is_skipped_and_config_flag_sets_home(
    tmp_path: Path, repo: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("database:\n  url: postgres://x\n")
    chunks = tmp_path / "c.jsonl"
    for cmd in (("mine", str(repo), "--out", str(chunks)), ("validate-data", str(chunks))):
        proc = guardian(*cmd, cwd=project)
        assert "unknown field" not in proc.stderr, proc.stderr
    assert chunks.is_file()
    ours = tmp_path / "ours.yaml"
    ours.write_text(f"state_dir: {tmp_path / 'flag-home'}\n")
    env = {"GUARDIAN_HOME": ""}
    proc = guardian("mine", str(repo), "--out", str(chunks), "--config", str(ours), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "flag-home" / "cache" / "mine").is_dir()


def test_user_config_dir_is_used_when_nothing_else_is(tmp_path: Path, repo: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "guardian").mkdir(parents=True)
    (xdg / "guardian" / "config.yaml").write_text(f"state_dir: {tmp_path / 'user-home'}\n")
    env = {"XDG_CONFIG_HOME": str(xdg), "GUARDIAN_HOME": ""}
    proc = guardian("mine", str(repo), "--out", str(tmp_path / "c.jsonl"), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "user-home" / "cache" / "mine").is_dir()


# 8. bad input is refused ----------------------------------------------------------------
def test_empty_data_is_refused(tmp_path: Path, tiny_base: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    one_error(guardian("validate-data", str(empty)), "no usable samples")
    blank = samples_file(tmp_path / "blank.jsonl", empty=True)
    one_error(guardian("validate-data", str(blank)), "no usable samples")
    proc = guardian(
        "train", str(blank), "--out", str(tmp_path / "m"), "--base", str(tiny_base), "--dry-run"
    )
    one_error(proc, "no trainable samples")


def test_validate_refuses_unknown_playbooks_missing_base_and_duplicate_keys(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "skills_file: skills.yaml\ndefault_playbook: nope\nbase_model: /no/such/model\n"
        "repos:\n  - {path: /tmp, playbook: ghost}\n"
    )
    (tmp_path / "skills.yaml").write_text(
        "skills:\n  mine: {step: mine}\nplaybooks:\n  p: {skills: [mine]}\n"
    )
    proc = guardian("validate", "--config", str(cfg))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "default_playbook: unknown playbook 'nope'" in proc.stderr
    assert "repos.0.playbook: unknown playbook 'ghost'" in proc.stderr
    assert "base_model:" in proc.stderr
    (tmp_path / "skills.yaml").write_text("skills: {}\nplaybooks: {}\n")
    cfg.write_text("skills_file: skills.yaml\n")
    proc = guardian("validate", "--config", str(cfg))
    assert "skills: must define at least one" in proc.stderr
    cfg.write_text("skills_file: skills.yaml\nbase_model: a\nbase_model: b\n")
    one_error(guardian("validate", "--config", str(cfg)), "duplicate key 'base_model'")


def _chunk(i: int, **over: object) -> str:
    row = {
        "id": f"id{i}", "repo": "r", "commit": "c", "path": f"m{i}.py", "language": "python",
        "kind": "function", "name": f"f{i}", "qualname": f"f{i}", "signature": f"def f{i}()",
        "docstring": "Return a number for the tests.", "code": f"def f{i}():\n    return {i}",
        "start_line": 1, "end_line": 2, "content_hash": f"h{i}",
    }  # fmt: skip
    return json.dumps({**row, **over}) + "\n"


def test_synthesize_refuses_duplicate_ids_and_inverted_ranges(tmp_path: Path) -> None:
    chunks = tmp_path / "c.jsonl"
    chunks.write_text(_chunk(0) + _chunk(1) + _chunk(0, path="m0.py", content_hash="x"))
    one_error(guardian("synthesize", str(chunks), "--out", str(tmp_path / "d.jsonl")),
              f"{chunks}:3", "duplicate chunk id")  # fmt: skip
    chunks.write_text(_chunk(0) + _chunk(1, start_line=9, end_line=2))
    one_error(guardian("synthesize", str(chunks), "--out", str(tmp_path / "d.jsonl")),
              f"{chunks}:2", "end_line 2 is before start_line 9")  # fmt: skip


# 9. messages that name the user's file and the real reason ------------------------------
def test_messages_name_the_real_file_and_reason(tmp_path: Path, repo: Path) -> None:
    chunks = tmp_path / "c.jsonl"
    chunks.write_text(_chunk(0) + "[1, 2]\n")
    one_error(guardian("synthesize", str(chunks), "--out", str(tmp_path / "d.jsonl")),
              f"{chunks}:2", "expected a JSON object")  # fmt: skip
    one_error(guardian("mine", str(repo / "pkg" / "mod0.py"), "--out", str(chunks)), "is a file")
    big = tmp_path / "big"
    make_git_repo(big, {"huge.py": "x = 1\n" * 200_000})
    proc = guardian("mine", str(big), "--out", str(tmp_path / "b.jsonl"))
    one_error(proc, "no supported source files", "too_large=1")


# 10. minor ------------------------------------------------------------------------------
def test_outputs_get_normal_permissions_and_no_progress_bars_in_logs(
    tmp_path: Path, repo: Path
) -> None:
    chunks = tmp_path / "c.jsonl"
    assert guardian("mine", str(repo), "--out", str(chunks)).returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert chunks.stat().st_mode & 0o777 == 0o666 & ~mask
    code = "import os, guardian.ml.base_model; print(os.environ.get('TQDM_DISABLE'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "1"


def test_plan_on_a_read_only_state_dir_is_one_line(tmp_path: Path, repo: Path) -> None:
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        home = {"GUARDIAN_HOME": str(mnt / "home")}
        assert guardian("runs", env=home).returncode == 0  # creates the state
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        one_error(guardian("plan", str(repo), env=home), "not writable")
    finally:
        subprocess.run(["umount", str(mnt)])
