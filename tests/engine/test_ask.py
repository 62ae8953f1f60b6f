"""`guardian ask` on a real repo with a real (tiny) promoted model: open/closed book, batch."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from guardian.cli import app
from tests.engine.test_runner import run, write_setup


def _ask(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ask", *args])
    return result.exit_code, result.output


def test_ask_champion_open_and_closed_book_and_batch(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config = write_setup(tmp_path, tiny_base)
    code, output = _ask(str(demo_repo), "Which file defines `percent_of`?", "--config", str(config))
    assert code == 1 and "no champion model yet" in output and len(output.splitlines()) == 1

    first = run(config, demo_repo)
    assert first.promoted_path is not None
    question = "Which file of this repository defines `percent_of`?"
    code, output = _ask(str(demo_repo), question, "--json", "--config", str(config))
    assert code == 0, output
    record = json.loads(output.splitlines()[-1])
    assert record["question"] == question and record["mode"] == "open"
    assert record["model"] == f"champion:{first.run_id}"
    assert isinstance(record["answer"], str) and isinstance(record["raw"], str)
    # retrieval found the chunk that defines percent_of (id: sha256 of path:qualname, cut)
    import hashlib

    wanted = hashlib.sha256(b"inventory/money.py:percent_of").hexdigest()[:16]
    assert wanted in record["documents"] and len(record["documents"]) <= 3

    code, output = _ask(
        str(demo_repo), question, "--closed-book", "--model", "base", "--json", "--config",
        str(config),
    )  # fmt: skip
    assert code == 0, output
    closed = json.loads(output.splitlines()[-1])
    assert closed["mode"] == "closed" and closed["documents"] == []
    assert closed["model"].startswith("base:")

    questions = tmp_path / "q.jsonl"
    lines = [json.dumps({"question": q}) for q in (question, "What calls `to_cents`?")]
    questions.write_text("\n".join(lines) + "\n")
    answers = tmp_path / "a.jsonl"
    code, output = _ask(
        str(demo_repo), "--questions", str(questions), "--out", str(answers), "--config",
        str(config),
    )  # fmt: skip
    assert code == 0, output
    rows = [json.loads(x) for x in answers.read_text().splitlines()]
    assert [r["question"] for r in rows] == [question, "What calls `to_cents`?"]
    assert all(isinstance(r["answer"], str) and r["documents"] for r in rows)


def test_ask_refuses_bad_input_in_one_line(tmp_path: Path, demo_repo: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok?"}\n{"q": 1}\n')
    code, output = _ask(str(demo_repo), "--questions", str(bad))
    assert code == 1 and f"{bad}:2: question: expected a non-empty string" in output
    code, output = _ask(str(demo_repo))
    assert code == 1 and "give either a QUESTION or --questions FILE" in output
    code, output = _ask(str(tmp_path / "nowhere"), "hi?", "--model", "base")
    assert code == 1 and len(output.strip().splitlines()) == 1
