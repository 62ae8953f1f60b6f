"""`guardian ask`: put a question about a repo's code to its model, open-book by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from guardian.cli.app import ConfigOpt, PlaybookOpt, app, handled, out, setup, skills_of
from guardian.cli.outputs import check_out_file
from guardian.errors import ConfigError, DataError


def _questions(path: Path) -> list[str]:
    from guardian.core.jsonl import numbered_lines

    found: list[str] = []
    for lineno, line in numbered_lines(path):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON ({exc})") from None
        question = record.get("question") if isinstance(record, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{path}:{lineno}: question: expected a non-empty string")
        found.append(question)
    if not found:
        raise DataError(f"{path}: no questions")
    return found


@app.command()
@handled
def ask(
    repo: Annotated[Path, typer.Argument(help="the repository the question is about")],
    question: Annotated[str | None, typer.Argument(help="the question")] = None,
    closed_book: Annotated[
        bool, typer.Option("--closed-book", help="no retrieved code in the prompt")
    ] = False,
    model: Annotated[
        str, typer.Option(help="champion, base, or a model dir (a train output)")
    ] = "champion",
    questions: Annotated[
        Path | None, typer.Option(help='JSONL file, one {"question": ...} a line')
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="with --questions: JSONL answers file")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON records")] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="print the model's text as generated (training markup)")
    ] = False,
    k: Annotated[int, typer.Option(min=1, help="documents retrieved per question")] = 3,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 192,
    playbook: PlaybookOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answer questions about REPO with its model; retrieval from the repo's code at HEAD."""
    from guardian.core.gitutil import head_commit
    from guardian.core.jsonl import write_jsonl
    from guardian.engine.ask import Asker, ask_setup, build_index, current_chunks
    from guardian.engine.trigger import playbook_for
    from guardian.store.state import StateStore

    if (question is None) == (questions is None):
        raise ConfigError("give either a QUESTION or --questions FILE")
    if out_file is not None and questions is None:
        raise ConfigError("--out needs --questions")
    asked = [question] if question is not None else _questions(questions)  # type: ignore[arg-type]
    if out_file is not None:
        check_out_file(out_file)
    cfg = setup(config)
    repo = repo.expanduser().resolve()
    head_commit(repo)
    skills = skills_of(cfg)
    playbook_name = playbook or playbook_for(cfg, repo) or cfg.default_playbook
    with StateStore(cfg.home) as store:
        how = ask_setup(cfg, skills, playbook_name, repo, model, store)
    index, chunks = None, []
    if not closed_book:
        chunks = current_chunks(repo, cfg.home, how.mine_params)
        index = build_index(chunks, how.synth)
    answers = Asker(how, cfg.home, index, chunks).ask(asked, k=k, max_new_tokens=max_new_tokens)
    records = [
        {
            "question": a.question,
            "answer": a.answer,
            "raw": a.raw,
            "documents": a.documents,
            "citations": [c.model_dump() for c in a.citations],
            "model": how.label,
            "mode": "closed" if closed_book else "open",
        }
        for a in answers
    ]
    if out_file is not None:
        write_jsonl(out_file, records)
        out.print(f"{len(records)} answers -> {out_file}", highlight=False)
    elif as_json:
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        for a in answers:
            shown = a.raw if raw else a.answer
            if a.citations and not raw:
                shown += "\n\nSources: " + ", ".join(str(c) for c in a.citations)
            typer.echo(shown if question is not None else f"Q: {a.question}\nA: {shown}\n")
