"""The CLI end to end in subprocesses: help without torch, validate, each step by hand, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers_git import make_git_repo

ROOT = Path(__file__).resolve().parents[2]


def guardian(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guardian", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _heavy_modules_after(body: str) -> list[str]:
    """Run `body` (with `app` and `CliRunner` imported) in a fresh interpreter; return which of
    torch, transformers and peft it imported."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from guardian.cli import app\n"
        f"{body}"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "print(' '.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_help_does_not_import_torch() -> None:
    body = (
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'run-once' in r.output\n"
    )
    assert _heavy_modules_after(body) == []


COMMANDS = (
    "validate",
    "plan",
    "run-once",
    "report",
    "runs",
    "mine",
    "validate-data",
    "synthesize",
    "train",
    "evaluate",
    "doctor",
    "gate",
    "promote",
    "export",
    "ask",
    "run",
    "status",
    "trigger",
    "hooks",
    "service",
    "models",
    "rollback",
)


def test_every_command_helps_without_torch() -> None:
    body = (
        f"for name in {COMMANDS!r}:\n"
        "    r = CliRunner().invoke(app, [name, '--help'])\n"
        "    assert r.exit_code == 0, (name, r.output)\n"
        "    assert 'Usage' in r.output, (name, r.output)\n"
    )
    assert _heavy_modules_after(body) == []


def test_validate_ok_and_all_errors_at_once(tmp_path: Path) -> None:
    ok = guardian("validate")
    assert ok.returncode == 0, ok.stderr
    assert "skills.yaml: ok" in ok.stdout
    bad = tmp_path / "skills.yaml"
    bad.write_text(
        "skills:\n  train: {step: train, params: {max_steps: -1}}\n"
        "playbooks:\n  retrain:\n    skills: [train, ghost]\n    gate: {min_margin: lots}\n"
    )
    proc = guardian("validate", "--skills", str(bad))
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert errors == [
        "error: skills.yaml: playbooks.retrain.gate.min_margin: expected a number (got 'lots')",
        "error: skills.yaml: skills.train.params.max_steps: must be >= 0",
        "error: skills.yaml: playbooks.retrain.skills.1: unknown skill 'ghost' (defined: train)",
    ]
    missing = guardian("validate", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: file not found"


@pytest.fixture()
def small_repo(tmp_path: Path) -> Path:
    files = {
        f"pkg/mod{i}.py": (
            f'"""Module {i}."""\n\n\n'
            f"def add_{i}(a: int, b: int = {i}) -> int:\n"
            f'    """Return the sum of a and b plus {i}, used by the tests."""\n'
            f"    return a + b + {i}\n\n\n"
            f"class Box{i}:\n"
            f'    """A box that holds one value of kind {i}."""\n\n'
            f"    def get(self) -> int:\n"
            f'        """Return the value stored in the box."""\n'
            f"        return {i}\n"
        )
        for i in range(6)
    }
    make_git_repo(tmp_path / "repo", files)
    return tmp_path / "repo"


def test_steps_by_hand(tmp_path: Path, small_repo: Path) -> None:
    from tests.tinymodel import make_tiny_base

    chunks = tmp_path / "chunks.jsonl"
    proc = guardian("mine", str(small_repo), "--out", str(chunks))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in chunks.read_text().splitlines()]
    assert {r["qualname"] for r in rows} >= {"add_0", "Box5", "Box5.get"}

    data = tmp_path / "data.jsonl"
    proc = guardian("synthesize", str(chunks), "--out", str(data))
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in data.read_text().splitlines()]
    assert {s["metadata"]["split"] for s in samples} == {"train", "val", "test"}

    base = make_tiny_base(tmp_path / "tiny")
    plan_dir = tmp_path / "plan"
    proc = guardian("train", str(data), "--out", str(plan_dir), "--base", str(base), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert (plan_dir / "train_plan.json").is_file() and not (plan_dir / "adapter").exists()

    model = tmp_path / "model"
    proc = guardian(
        "train", str(data), "--out", str(model), "--base", str(base), "--max-steps", "3"
    )
    assert proc.returncode == 0, proc.stderr
    assert (model / "adapter" / "adapter_config.json").is_file()

    metrics = tmp_path / "metrics.json"
    proc = guardian(
        "evaluate", str(model), "--data", str(data), "--out", str(metrics), "--em-items", "1",
        "--guard-items", "8", "--code-items", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(metrics.read_text())
    n_test = sum(1 for s in samples if s["metadata"]["split"] == "test")
    assert doc["challenger"]["n"] == n_test and doc["baseline_kind"] == "base"
    assert "probe" not in doc  # no --chunks: no knowledge probe

    probed = tmp_path / "probed.json"
    proc = guardian(
        "evaluate", str(model), "--data", str(data), "--out", str(probed), "--em-items", "0",
        "--chunks", str(chunks), "--probe-per-kind", "2", "--guard-items", "4", "--code-items", "0",
        "--ask-per-kind", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(probed.read_text())
    rows = probed.with_suffix(".probe.jsonl").read_text().splitlines()
    assert doc["probe"]["challenger"]["n"] == len(rows) > 0
    asked = probed.with_suffix(".answers.jsonl").read_text().splitlines()
    assert doc["answers"]["challenger"]["open"]["n"] == len(asked) > 0


def test_bad_inputs_give_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "q", "output": "a"}\n{"input": 3}\n')
    proc = guardian("train", str(bad), "--out", str(tmp_path / "m"), "--dry-run")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}:2: input: Input should be a valid string"
    ]
    proc = guardian(
        "mine", str(tmp_path), "--out", str(tmp_path / "c.jsonl"), "--language", "cobol"
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: options: languages.0:")
    assert not (tmp_path / "m").exists() and not (tmp_path / "c.jsonl").exists()
    proc = guardian("report", "--format", "md")
    assert proc.returncode == 1 and "no runs yet" in proc.stderr


def test_mine_stats_since_and_plain_dir(tmp_path: Path, small_repo: Path) -> None:
    chunks = tmp_path / "chunks.jsonl"
    proc = guardian("mine", str(small_repo), "--out", str(chunks), "--stats", "--since", "HEAD")
    assert proc.returncode == 0, proc.stderr
    assert "python" in proc.stdout and "skip" in proc.stdout.lower()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text('def f():\n    """Say hi."""\n    return "hi"\n')
    proc = guardian("mine", str(plain), "--out", str(tmp_path / "p.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "p.jsonl").read_text())["qualname"] == "f"


def test_validate_data_reports_card_and_bad_lines(tmp_path: Path, small_repo: Path) -> None:
    chunks, data = tmp_path / "chunks.jsonl", tmp_path / "data.jsonl"
    assert guardian("mine", str(small_repo), "--out", str(chunks)).returncode == 0
    assert guardian("synthesize", str(chunks), "--out", str(data)).returncode == 0
    card = tmp_path / "card.json"
    proc = guardian("validate-data", str(data), "--card", str(card))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("kept ") and json.loads(card.read_text())["kept"]["train"] > 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text(data.read_text() + '{"input": 5}\n')
    proc = guardian("validate-data", str(broken))
    assert proc.returncode == 1
    assert "1 malformed line(s)" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_refuses_ollama_promotion_from_an_hf_base(tmp_path: Path) -> None:
    from tests.tinymodel import make_tiny_base

    base = make_tiny_base(tmp_path / "base")
    config = tmp_path / "config.yaml"
    skills = ROOT / "skills" / "skills.yaml"
    config.write_text(f"base_model: {base}\nskills_file: {skills}\npromote:\n  target: ollama\n")
    proc = guardian("validate", "--config", str(config))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: config.yaml: promote.target: ollama needs a GGUF or alias base_model (the "
        "export takes its tokenizer from the base's GGUF; got hf_dir)"
    ]
    config.write_text(f"base_model: {base}\nskills_file: {skills}\n")
    assert guardian("validate", "--config", str(config)).returncode == 0
