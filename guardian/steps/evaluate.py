"""The `evaluate` step: challenger adapter vs baseline (champion adapter or untrained base).

The base is loaded once; the challenger and champion are two named peft adapters on it and
the untrained base is the same model with adapters disabled. Perplexity is exp of the
token-weighted mean NLL over answer tokens only (prompt and padding masked); exact match
compares greedy answers on `em_items` samples spread evenly over the split.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import Field

from guardian.errors import DataError, StepError
from guardian.prompting import IGNORE_INDEX, EncodedExample, collate, encode_example, prompt_ids
from guardian.records import Sample, read_jsonl, write_json, write_jsonl
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = structlog.get_logger(__name__)

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


def answer_nll(
    model: PreTrainedModel | PeftModel,
    examples: list[EncodedExample],
    batch_size: int,
    pad_id: int,
) -> list[tuple[float, int]]:
    """Per example: (summed NLL over label tokens != -100, number of such tokens)."""
    import torch
    import torch.nn.functional as F

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    results: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([examples[i] for i in idx], pad_id)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            targets = batch["labels"][:, 1:]
            nll = F.cross_entropy(
                logits[:, :-1].float().transpose(1, 2),
                targets,
                ignore_index=IGNORE_INDEX,
                reduction="none",
            )
            mask = targets != IGNORE_INDEX
            sums = (nll * mask).sum(dim=1).tolist()
            counts = mask.sum(dim=1).tolist()
            for row, i in enumerate(idx):
                results[i] = (float(sums[row]), int(counts[row]))
    return results


def generate_answers(
    model: PreTrainedModel | PeftModel,
    tok: PreTrainedTokenizerBase,
    samples: list[Sample],
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    """Greedy answers for samples (left-padded batches), decoded without special tokens."""
    import torch

    pad_id = int(tok.pad_token_id)
    answers: list[str] = []
    for start in range(0, len(samples), batch_size):
        prompts = [prompt_ids(tok, s) for s in samples[start : start + batch_size]]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        with torch.no_grad():
            out = model.generate(  # type: ignore[operator]
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
                eos_token_id=tok.eos_token_id,
            )
        for row in out[:, width:]:
            answers.append(str(tok.decode(row.tolist(), skip_special_tokens=True)).strip())
    return answers


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when k is 0 or >= n); deterministic."""
    if k <= 0 or k >= n:
        return list(range(n))
    return [i * n // k for i in range(k)]


def normalise(text: str) -> str:
    """Whitespace-normalised, stripped text for exact-match comparison."""
    return " ".join(text.split())


def run(ctx: StepContext, params: Params) -> StepResult:
    """Score challenger and baseline on a split; write metrics.json and items.jsonl."""
    import torch
    from peft import PeftModel

    from guardian.models import base_of, load_model_and_tokenizer

    challenger_dir = ctx.input("model")
    dataset = ctx.input("dataset")
    baseline_dir = ctx.inputs.get("baseline")
    split_file = dataset / f"{params.split}.jsonl"
    every = list(read_jsonl(split_file, Sample))
    if not every:
        raise DataError(f"{split_file}: {params.split} split is empty")
    chosen = spread(len(every), params.max_items)
    em_first = [chosen[i] for i in spread(len(chosen), min(params.em_items, len(chosen)))]
    taken = set(em_first)
    order = em_first + [i for i in chosen if i not in taken]
    samples = [every[i] for i in order]

    ref = base_of(challenger_dir, ctx.home)
    if baseline_dir is not None:
        baseline_ref = base_of(baseline_dir, ctx.home)
        if baseline_ref.fingerprint != ref.fingerprint:
            raise StepError(
                f"baseline {baseline_dir.name} was trained on base '{baseline_ref.spec}' but the "
                f"challenger on '{ref.spec}'; their perplexities are not comparable"
            )
    torch.manual_seed(params.seed)
    base, tok = load_model_and_tokenizer(ref.path)
    model = PeftModel.from_pretrained(
        base, str(_adapter_dir(challenger_dir)), adapter_name=CHALLENGER
    )
    if baseline_dir is not None:
        model.load_adapter(str(_adapter_dir(baseline_dir)), adapter_name=CHAMPION)
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
        report[role] = _summary(names[role], dataset.name, data["nll"], data["answers"], samples)
    write_json(ctx.out_dir / "metrics.json", report)
    items = sorted(_items(samples, order, scored), key=lambda item: int(item["index"]))
    write_jsonl(ctx.out_dir / "items.jsonl", items)
    metrics = {
        "challenger_perplexity": report["challenger"]["perplexity"],
        "baseline_perplexity": report["baseline"]["perplexity"],
        "challenger_exact_match": report["challenger"]["exact_match"],
        "baseline_exact_match": report["baseline"]["exact_match"],
        "n": len(samples),
    }
    return StepResult(outputs=["metrics.json", "items.jsonl"], metrics=metrics)


def _adapter_dir(model_dir: Path) -> Path:
    adapter = model_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise StepError(f"{adapter}: no adapter_config.json (is {model_dir} a train output?)")
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


def _summary(
    name: str,
    dataset: str,
    nll: list[tuple[float, int]],
    answers: list[str],
    samples: list[Sample],
) -> dict[str, Any]:
    tokens = sum(n for _, n in nll)
    mean_nll = sum(s for s, _ in nll) / tokens if tokens else float("nan")
    hits = [normalise(a) == normalise(s.output) for a, s in zip(answers, samples, strict=False)]
    return {
        "model": name,
        "dataset": dataset,
        "n": len(nll),
        "answer_tokens": tokens,
        "mean_nll": mean_nll,
        "perplexity": math.exp(mean_nll) if tokens else float("nan"),
        "exact_match": sum(hits) / len(hits) if hits else None,
    }


def _items(
    samples: list[Sample], order: list[int], scored: dict[str, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    for i, sample in enumerate(samples):
        item: dict[str, Any] = {"index": order[i]}
        for key in ("path", "question_type"):
            if key in sample.metadata:
                item[key] = sample.metadata[key]
        for role in ("challenger", "baseline"):
            total, count = scored[role]["nll"][i]
            item[f"{role}_nll"] = total / count if count else None
        if i < len(scored["challenger"]["answers"]):
            item["reference"] = sample.output
            for role in ("challenger", "baseline"):
                answer = scored[role]["answers"][i]
                item[f"{role}_answer"] = answer
                item[f"{role}_em"] = normalise(answer) == normalise(sample.output)
        item["answer_tokens"] = scored["challenger"]["nll"][i][1]
        yield item


SPEC = StepSpec(
    name="evaluate",
    fn=run,
    params=Params,
    needs=("model", "dataset"),
    optional_needs=("baseline",),
    provides="metrics",
)
