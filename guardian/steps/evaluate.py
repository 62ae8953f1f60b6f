"""The `evaluate` step: challenger adapter vs baseline (champion adapter or untrained base).

The base is loaded once; the challenger and champion are two named peft adapters on it and
the untrained base is the same model with adapters disabled. Perplexity is exp of the
token-weighted mean NLL over answer tokens only (prompt and padding masked); exact match
compares greedy answers on `em_items` samples spread evenly over the split. The knowledge
probe (guardian/data/probe.py, scored by guardian/evaluation/probe.py) asks both models the
same held-out questions about the mined code, closed-book and open-book: `probe_open` and
`probe_closed` are the share answered right, `probe_closed_seen` the closed-book share on
symbols of files the challenger was trained on.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import Field

from guardian.core.faults import fault_point
from guardian.core.jsonl import read_jsonl, write_json, write_jsonl
from guardian.core.schema import Chunk, ProbeItem, Sample
from guardian.errors import DataError, StepError
from guardian.evaluation.metrics import item_records, role_summary
from guardian.evaluation.probe import probe_summary
from guardian.ml.prompting import encode_example
from guardian.ml.scoring import answer_nll, generate_answers, spread
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

if TYPE_CHECKING:
    from peft import PeftModel

log = structlog.get_logger(__name__)

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
CHALLENGER = "challenger"
CHAMPION = "champion"


class Params(StepParams):
    """Which split to score and how much greedy generation to spend on exact match."""

    split: Literal["test", "val"] = "test"
    max_len: int = Field(default=256, ge=32)
    batch_size: int = Field(default=8, gt=0)
    max_items: int = Field(default=0, ge=0, description="score at most this many (0 = all)")
    em_items: int = Field(default=16, ge=0)
    max_new_tokens: int = Field(default=64, gt=0)
    seed: int = 0
    probe_per_kind: int = Field(default=12, ge=0, description="probe questions per kind (0: off)")
    probe_k: int = Field(default=3, ge=1, description="documents an open-book question gets")
    probe_max_new_tokens: int = Field(default=128, gt=0)


def run(ctx: StepContext, params: Params) -> StepResult:
    """Score challenger and baseline on a split; write metrics.json and items.jsonl."""
    import torch
    from peft import PeftModel

    from guardian.ml.base_model import base_of, base_record, load_model_and_tokenizer

    challenger_dir = ctx.input("model")
    dataset = ctx.input("dataset")
    baseline_dir = ctx.inputs.get("baseline")
    samples, order = _items(dataset, params)

    challenger_adapter = _adapter_dir(challenger_dir)
    baseline_adapter = _adapter_dir(baseline_dir) if baseline_dir is not None else None
    if baseline_dir is not None:  # compare the records before loading or converting anything
        mine, theirs = base_record(challenger_dir), base_record(baseline_dir)
        if theirs.fingerprint != mine.fingerprint:
            raise StepError(
                f"baseline {baseline_dir.name} was trained on base '{theirs.spec}' but the "
                f"challenger on '{mine.spec}'; their perplexities are not comparable"
            )
    ref = base_of(challenger_dir, ctx.home)
    torch.manual_seed(params.seed)
    base, tok = load_model_and_tokenizer(ref.path)
    try:
        model = PeftModel.from_pretrained(base, str(challenger_adapter), adapter_name=CHALLENGER)
        if baseline_adapter is not None:
            model.load_adapter(str(baseline_adapter), adapter_name=CHAMPION)
    except Exception as exc:  # peft on files from disk: any failure means a broken adapter
        raise StepError(f"cannot load adapter ({type(exc).__name__}: {exc})") from exc
    model.eval()

    examples = [encode_example(tok, s, params.max_len) for s in samples]
    em_samples = samples[: params.em_items]
    pad_id = int(tok.pad_token_id)
    scored: dict[str, dict[str, Any]] = {}
    for role in ("challenger", "baseline"):
        with _active(model, role, baseline_dir is not None):
            nll = answer_nll(model, examples, params.batch_size, pad_id)
            answers = generate_answers(
                model, tok, em_samples, params.max_new_tokens, params.batch_size
            )
        scored[role] = {"nll": nll, "answers": answers}
        fault_point("during", "evaluate")
        log.info("evaluate scored", role=role, n=len(examples), em_items=len(answers))

    names = {
        "challenger": challenger_dir.name,
        "baseline": baseline_dir.name if baseline_dir is not None else f"base:{ref.spec}",
    }
    report: dict[str, Any] = {
        "baseline_kind": "champion" if baseline_dir is not None else "base",
        "split": params.split,
    }
    for role, data in scored.items():
        report[role] = role_summary(
            names[role], dataset.name, data["nll"], data["answers"], samples
        )
    outputs = ["metrics.json", "items.jsonl"]
    if params.probe_per_kind:
        probe = _probe(ctx, params, model, tok, baseline_dir is not None)
        report["probe"] = probe.pop("summary")
        for role in ("challenger", "baseline"):
            report[role] |= _probe_metrics(report["probe"][role])
        write_jsonl(ctx.out_dir / "probe_items.jsonl", probe["items"])
        outputs.append("probe_items.jsonl")
    write_json(ctx.out_dir / "metrics.json", report)
    items = sorted(item_records(samples, order, scored), key=lambda item: int(item["index"]))
    write_jsonl(ctx.out_dir / "items.jsonl", items)
    metrics = {
        f"{role}_{name}": report[role].get(name)
        for name in ("perplexity", "exact_match", "probe_open", "probe_closed")
        for role in ("challenger", "baseline")
    }
    metrics["n"] = len(samples)
    return StepResult(outputs=outputs, metrics=metrics)


def _probe_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The probe figures a gate can use, flat: open/closed accuracy, seen/unseen splits."""
    out: dict[str, Any] = {}
    for mode in ("open", "closed"):
        row = summary.get(mode, {})
        out[f"probe_{mode}"] = row.get("accuracy")
        out[f"probe_{mode}_seen"] = row.get("seen")
        out[f"probe_{mode}_unseen"] = row.get("unseen")
    return out


def _probe(
    ctx: StepContext, params: Params, model: PeftModel, tok: Any, has_champion: bool
) -> dict[str, Any]:
    """Ask both roles the probe's questions; the summary per role and the per-item records."""
    from guardian.data.context import ContextIndex
    from guardian.data.probe import build_probe
    from guardian.steps.probing import answer_probe, probe_prompts

    dataset = ctx.input("dataset")
    chunks = list(read_jsonl(ctx.input_file("chunks", "chunks.jsonl"), Chunk))
    seen = {str(s.metadata.get("path")) for s in read_jsonl(dataset / "train.jsonl", Sample)}
    synth = _synthesis(dataset)
    items = build_probe(chunks, seen, seed=params.seed, per_kind=params.probe_per_kind)
    prompts = probe_prompts(items, ContextIndex.for_synthesis(chunks, synth), k=params.probe_k)
    runs: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for role in ("challenger", "baseline"):
        with _active(model, role, has_champion):
            runs[role] = answer_probe(
                model,
                tok,
                items,
                prompts,
                max_new_tokens=params.probe_max_new_tokens,
                batch_size=params.batch_size,
            )
        log.info("evaluate probe", role=role, n=len(items))
    summary = {
        role: probe_summary(
            items,
            {m: r["correct"] for m, r in run.items()},
            prompts.recall,
            {m: r["cut"] for m, r in run.items()},
        )
        for role, run in runs.items()
    }
    return {"summary": summary, "items": list(_probe_records(items, prompts.recall, runs))}


def _probe_records(
    items: list[ProbeItem], recall: list[bool], runs: dict[str, dict[str, dict[str, list[Any]]]]
) -> Iterator[dict[str, Any]]:
    for i, item in enumerate(items):
        row: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "question": item.question,
            "expected": item.expected,
            "seen": item.seen,
            "retrieved": recall[i],
        }
        for role, run in runs.items():
            for mode, got in run.items():
                row[f"{role}_{mode}_answer"] = got["answers"][i]
                row[f"{role}_{mode}_correct"] = got["correct"][i]
                row[f"{role}_{mode}_cut"] = got["cut"][i]
        yield row


def _synthesis(dataset: Path) -> dict[str, Any]:
    """The synthesis settings recorded in the dataset card (context sizes, instruction)."""
    try:
        card = json.loads((dataset / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    info = card.get("synthesis", {}) if isinstance(card, dict) else {}
    return info if isinstance(info, dict) else {}


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


def _adapter_dir(model_dir: Path) -> Path:
    adapter = model_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise StepError(f"{adapter}: no adapter_config.json (is {model_dir} a train output?)")
    if not any((adapter / n).is_file() for n in ADAPTER_WEIGHTS):
        raise StepError(f"{adapter}: no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    return adapter


@contextlib.contextmanager
def _active(model: PeftModel, role: str, has_champion: bool) -> Iterator[None]:
    if role == "challenger":
        model.set_adapter(CHALLENGER)
        yield
    elif has_champion:
        model.set_adapter(CHAMPION)
        yield
    else:
        with model.disable_adapter():
            yield


SPEC = StepSpec(
    name="evaluate",
    fn=run,
    params=Params,
    needs=("model", "dataset", "chunks"),
    optional_needs=("baseline",),
    provides="metrics",
    version="2",
    libraries=("torch", "transformers", "peft"),
)
