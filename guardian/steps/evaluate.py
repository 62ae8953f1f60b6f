"""The `evaluate` step: challenger adapter vs baseline (champion adapter or untrained base).

Both models come from guardian/steps/roles.py (loaded once; a champion on another base is
compared on the tokenizer-free metrics only). Perplexity is exp of the token-weighted mean
NLL over answer tokens only (prompt and padding masked). Exact match and token F1 compare
final answers (guardian/evaluation/metrics.py) of `em_items` samples spread evenly over the
split, generated with room for the longest reference. The knowledge probe
(guardian/data/probe.py, scored by guardian/evaluation/probe.py) asks both models the same
held-out questions about the mined code, closed-book and open-book: `probe_open` and
`probe_closed` are the share answered right, `probe_closed_seen` the closed-book share on
symbols of files the challenger was trained on. `hallucination_rate` is over every generated
answer (guardian/evaluation/hallucination.py). `codebleu` and `syntax_valid_rate` score
the code written for up to `code_items` "complete" questions of the split
(guardian/evaluation/code.py). Answer quality (guardian/steps/answering.py) asks what people
ask — explain, how-to, where, usage, write the code — `ask_per_kind` of each, both modes:
`answers_<mode>[_<kind>]` scores, `collapse_<mode>` (bare quote-and-token answers) and
`invented_<mode>` (invented identifiers per answer). Each metric carries a paired bootstrap 95%
interval, and so does the difference challenger - baseline (`difference_ci`), which
`require_significant` gates on. With `grounded_quotes` (the default) every generation
that has documents in its prompt quotes them verbatim (guardian/ml/grounding.py), as
`guardian ask` answers users.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import Field

from guardian.core.faults import fault_point
from guardian.core.jsonl import read_jsonl, write_json, write_jsonl
from guardian.core.schema import Chunk, Sample
from guardian.errors import DataError
from guardian.evaluation.code import code_scores
from guardian.evaluation.hallucination import RepoNames, hallucination
from guardian.evaluation.metrics import exact_match, item_records, role_summary, token_f1
from guardian.evaluation.stats import PairedItems, paired_intervals
from guardian.ml.prompting import encode_example
from guardian.ml.scoring import answer_nll, generate_with_cuts, spread
from guardian.steps.answering import AskSettings, answer_metrics, run_asks
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec
from guardian.steps.encoding import encode_fitted
from guardian.steps.probing import ProbeSettings, probe_metrics, prompt_text, run_probe
from guardian.steps.roles import Role, load_roles

log = structlog.get_logger(__name__)

# The figures the step reports in its own metrics (per role), beside metrics.json.
STEP_METRICS = (
    "perplexity", "exact_match", "token_f1", "hallucination_rate", "probe_open", "probe_closed",
    "guard_perplexity", "codebleu", "syntax_valid_rate", "answers_open", "answers_closed",
    "collapse_open", "collapse_closed",
)  # fmt: skip
ROLES = ("challenger", "baseline")


class Params(StepParams):
    """Which split to score and how much greedy generation to spend on exact match."""

    split: Literal["test", "val"] = "test"
    max_len: int = Field(default=256, ge=32)
    batch_size: int = Field(default=8, gt=0)
    max_items: int = Field(default=0, ge=0, description="score at most this many (0 = all)")
    em_items: int = Field(default=16, ge=0)
    max_new_tokens: int = Field(
        default=256, gt=0, description="cap on the exact-match generation (sized to the references)"
    )
    seed: int = 0
    probe_per_kind: int = Field(default=12, ge=0, description="probe questions per kind (0: off)")
    probe_k: int = Field(default=3, ge=1, description="documents an open-book question gets")
    probe_max_new_tokens: int = Field(default=128, gt=0)
    guard_items: int = Field(
        default=0, ge=0, description="guard-set items to score (0: all of the shipped set)"
    )
    guard: bool = Field(default=True, description="score the shipped guard set (forgetting)")
    code_items: int = Field(
        default=8, ge=0, description="code-writing items for CodeBLEU and syntax validity"
    )
    grounded_quotes: bool = Field(
        default=True, description="hold quotes to the prompt's documents, as `guardian ask` does"
    )
    ask_per_kind: int = Field(
        default=4, ge=0, description="answer-quality questions per kind (0: off)"
    )
    ask_max_new_tokens: int = Field(default=160, gt=0)
    ask_run_tests: bool = Field(
        default=True, description="run the repo's tests against code answers (pass@1)"
    )


def run(ctx: StepContext, params: Params) -> StepResult:
    """Score challenger and baseline on a split; write metrics.json and items.jsonl."""
    dataset = ctx.input("dataset")
    samples, order = _items(dataset, params)
    roles = load_roles(ctx.input("model"), ctx.inputs.get("baseline"), ctx.home, params.seed)
    chunks = _chunks(ctx)
    names = RepoNames.of(chunks) if chunks is not None else None
    scored = {role.name: _score_split(role, samples, params, names) for role in roles}
    report: dict[str, Any] = {
        "baseline_kind": "base" if "baseline" not in ctx.inputs else "champion",
        "split": params.split,
    }
    if not roles[1].same_tokens:
        report["baseline_note"] = (
            f"the champion {roles[1].label} was trained on another base model: compared on "
            "the tokenizer-free metrics only (knowledge probe, exact match, F1, hallucination)"
        )
    for role in roles:
        data = scored[role.name]
        report[role.name] = role_summary(
            role.label, dataset.name, data["nll"], data["answers"], samples
        )
    outputs = ["metrics.json", "items.jsonl"]
    paired = _paired_test_items(scored, [s.output for s in samples[: params.em_items]])
    if params.guard:
        guard = _guard(roles, params)
        for r in ROLES:
            report[r]["guard_perplexity"] = guard[r]
        paired["guard_perplexity"] = guard["paired"]
    judged = {r: list(scored[r]["hallucination"]) for r in ROLES}
    if params.probe_per_kind and chunks is not None and names is not None:
        settings = ProbeSettings(
            params.probe_per_kind, params.probe_k, params.probe_max_new_tokens,
            params.batch_size, params.seed, params.grounded_quotes,
        )  # fmt: skip
        probe = run_probe(roles, dataset, chunks, names, settings)
        report["probe"] = probe["summary"]
        for r in ROLES:
            report[r] |= probe_metrics(report["probe"][r])
            judged[r] += probe["hallucinations"][r]
        paired |= probe["paired"]
        write_jsonl(ctx.out_dir / "probe_items.jsonl", probe["items"])
        outputs.append("probe_items.jsonl")
    if params.ask_per_kind and chunks is not None and names is not None:
        asked = _answer_eval(roles, dataset, chunks, names, params, ctx)
        if asked is not None:
            report["answers"] = asked["summary"]
            for r in ROLES:
                report[r] |= answer_metrics(asked["summary"][r])
            paired |= asked["paired"]
            write_jsonl(ctx.out_dir / "answer_items.jsonl", asked["items"])
            outputs.append("answer_items.jsonl")
    if params.code_items and chunks is not None:
        coded = _code_eval(roles, dataset, chunks, params)
        if coded is not None:
            for r in ROLES:
                report[r] |= coded["summary"][r]
            paired |= coded["paired"]
            write_jsonl(ctx.out_dir / "code_items.jsonl", coded["items"])
            outputs.append("code_items.jsonl")
    if names is not None:
        flagged = {r: [float(x is not None) for x in judged[r]] for r in ROLES}
        paired["hallucination_rate"] = PairedItems(flagged["challenger"], flagged["baseline"])
        for r in ROLES:
            report[r]["hallucination_rate"] = _share([x is not None for x in judged[r]])
    ci = paired_intervals(paired, seed=params.seed)
    for r in ROLES:
        report[r]["ci"] = ci[r]
    report["difference_ci"] = ci["difference"]
    write_json(ctx.out_dir / "metrics.json", report)
    items = sorted(item_records(samples, order, scored), key=lambda item: int(item["index"]))
    write_jsonl(ctx.out_dir / "items.jsonl", items)
    metrics: dict[str, Any] = {
        f"{r}_{name}": report[r].get(name) for name in STEP_METRICS for r in ROLES
    }
    metrics["n"] = len(samples)
    return StepResult(outputs=outputs, metrics=metrics)


def _answer_eval(
    roles: tuple[Role, Role],
    dataset: Path,
    chunks: list[Chunk],
    names: RepoNames,
    params: Params,
    ctx: StepContext,
) -> dict[str, Any] | None:
    """The answer-quality questions, asked of both roles (steps/answering.py)."""
    settings = AskSettings(
        params.ask_per_kind, params.probe_k, params.ask_max_new_tokens, params.batch_size,
        params.seed, params.grounded_quotes, params.ask_run_tests,
    )  # fmt: skip
    return run_asks(roles, dataset, chunks, names, settings, ctx.repo, ctx.commit)


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _score_split(
    role: Role, samples: list[Sample], params: Params, names: RepoNames | None
) -> dict[str, Any]:
    """One role's answer NLL of every sample (none on a foreign tokenizer), and greedy answers,
    cuts and hallucinations of the first `em_items`."""
    tok = role.tok
    em_samples = samples[: params.em_items]
    budget = _answer_budget(tok, em_samples, params.max_new_tokens)
    with role.activate():
        if role.same_tokens:
            examples, _ = encode_fitted(tok, samples, params.max_len)
            nll = answer_nll(role.model, examples, params.batch_size, int(tok.pad_token_id))
        else:
            nll = [(0.0, 0)] * len(samples)
        answers, cuts = generate_with_cuts(
            role.model, tok, em_samples, budget, params.batch_size, grounded=params.grounded_quotes
        )
    invented = [
        hallucination(a, prompt_text(s), names) if names else None
        for a, s in zip(answers, em_samples, strict=True)
    ]
    fault_point("during", "evaluate")
    log.info("evaluate scored", role=role.name, n=len(samples), em_items=len(answers))
    return {"nll": nll, "answers": answers, "cut": cuts, "hallucination": invented}


def _code_eval(
    roles: tuple[Role, Role], dataset: Path, chunks: list[Chunk], params: Params
) -> dict[str, Any] | None:
    """Both roles write the bodies asked by up to `code_items` "complete" questions; each
    answer's CodeBLEU and syntax validity, their means and paired values (None: no items)."""
    by_id = {c.id: c for c in chunks}
    every = [
        (s, by_id[str(s.metadata.get("chunk_id"))])
        for s in read_jsonl(dataset / f"{params.split}.jsonl", Sample)
        if s.metadata.get("question_type") == "complete"
        and str(s.metadata.get("chunk_id")) in by_id
    ]
    picked = [every[i] for i in spread(len(every), params.code_items)]
    if not picked:
        return None
    samples = [s for s, _ in picked]
    scores: dict[str, list[dict[str, Any]]] = {}
    for role in roles:
        budget = _answer_budget(role.tok, samples, params.max_new_tokens)
        with role.activate():
            answers, _ = generate_with_cuts(
                role.model,
                role.tok,
                samples,
                budget,
                params.batch_size,
                grounded=params.grounded_quotes,
            )
        scores[role.name] = [
            {"answer": a, **code_scores(a, s.output, c.signature, c.language)}
            for a, (s, c) in zip(answers, picked, strict=True)
        ]
    log.info("evaluate code", n=len(picked))
    summary: dict[str, dict[str, Any]] = {r: {} for r in ROLES}
    paired: dict[str, PairedItems] = {}
    for metric, field in (("codebleu", "codebleu"), ("syntax_valid_rate", "syntax_valid")):
        both = [
            (float(c[field]), float(b[field]))
            for c, b in zip(scores["challenger"], scores["baseline"], strict=True)
            if c[field] is not None and b[field] is not None
        ]
        for col, r in enumerate(ROLES):
            summary[r][metric] = sum(p[col] for p in both) / len(both) if both else None
        if both:
            paired[metric] = PairedItems([p[0] for p in both], [p[1] for p in both])
    items = [
        {
            "path": c.path,
            "qualname": c.qualname,
            "language": c.language,
            "reference": s.output,
            **{f"{r}_{k}": scores[r][i][k] for r in ROLES for k in scores[r][i]},
        }
        for i, (s, c) in enumerate(picked)
    ]
    return {"summary": summary, "paired": paired, "items": items}


def _guard(roles: tuple[Role, Role], params: Params) -> dict[str, Any]:
    """Answer perplexity of each role on the guard set (None on a foreign tokenizer), and
    the paired per-item values for its interval."""
    from guardian.evaluation.guard import guard_samples

    every = guard_samples()
    chosen = [every[i] for i in spread(len(every), params.guard_items)]
    out: dict[str, Any] = {}
    per_item: dict[str, list[tuple[float, int]]] = {}
    for role in roles:
        if not role.same_tokens:
            out[role.name], per_item[role.name] = None, [(0.0, 0)] * len(chosen)
            continue
        examples = [encode_example(role.tok, s, params.max_len) for s in chosen]
        with role.activate():
            nll = answer_nll(role.model, examples, params.batch_size, int(role.tok.pad_token_id))
        tokens = sum(n for _, n in nll)
        out[role.name] = math.exp(sum(t for t, _ in nll) / tokens) if tokens else None
        per_item[role.name] = nll
    log.info("evaluate guard", n=len(chosen), **{r: out[r] for r in ROLES})

    counts = [n for _, n in per_item["challenger"]]
    out["paired"] = PairedItems(
        _per_item_nll(per_item["challenger"]), _per_item_nll(per_item["baseline"]), counts, "exp"
    )
    return out


def _per_item_nll(nll: list[tuple[float, int]]) -> list[float]:
    """Each item's mean answer NLL (NaN for an item without answer tokens: it weighs 0)."""
    return [total / n if n else float("nan") for total, n in nll]


def _answer_budget(tok: Any, samples: list[Sample], cap: int) -> int:
    """New tokens for exact-match generation: the longest reference and some slack, capped."""
    if not samples:
        return 1
    longest = max(len(tok(s.output, add_special_tokens=False)["input_ids"]) for s in samples)
    return max(1, min(cap, longest + 16))


def _chunks(ctx: StepContext) -> list[Chunk] | None:
    """The mined chunks (probe questions, hallucination check); None without that input."""
    if "chunks" not in ctx.inputs and "chunks" not in ctx.files:
        return None
    return list(read_jsonl(ctx.input_file("chunks", "chunks.jsonl"), Chunk))


def _paired_test_items(
    scored: dict[str, dict[str, Any]], refs: list[str]
) -> dict[str, PairedItems]:
    """Per-item values of the test-split metrics for both roles, for the bootstrap."""
    chal, base = scored["challenger"], scored["baseline"]
    counts = [n for _, n in chal["nll"]]

    paired = {
        "perplexity": PairedItems(
            _per_item_nll(chal["nll"]), _per_item_nll(base["nll"]), counts, "exp"
        ),
    }
    for name, fn in (("exact_match", exact_match), ("token_f1", token_f1)):
        got = [
            [float(fn(a, r)) for a, r in zip(x["answers"], refs, strict=True)] for x in (chal, base)
        ]
        paired[name] = PairedItems(got[0], got[1])
    return paired


def _items(dataset: Path, params: Params) -> tuple[list[Sample], list[int]]:
    """The split's samples to score, exact-match ones first, and their indices in the file."""
    split_file = dataset / f"{params.split}.jsonl"
    every = list(read_jsonl(split_file, Sample))
    if not every:
        raise DataError(f"{split_file}: {params.split} split is empty")
    chosen = spread(len(every), params.max_items)
    em_first = [chosen[i] for i in spread(len(chosen), min(params.em_items, len(chosen)))]
    taken = set(em_first)
    order = em_first + [i for i in chosen if i not in taken]
    samples = [every[i] for i in order]
    return samples, order


def _guard_key(params: Params, home: Path) -> str | None:
    """The guard set's digest, when the step scores it (a changed set re-runs evaluation)."""
    from guardian.evaluation.guard import guard_digest

    return guard_digest() if params.guard else None


SPEC = StepSpec(
    name="evaluate",
    fn=run,
    params=Params,
    needs=("model", "dataset", "chunks"),
    optional_needs=("baseline",),
    provides="metrics",
    version="5",
    libraries=("torch", "transformers", "peft"),
    extra_key=_guard_key,
)
