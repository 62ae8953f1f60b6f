"""Replay against forgetting: general questions answered by the base model itself.

Fine-tuning on one repo's Q/A pulls a small model's answers on everything else toward that
repo's style (the guard set's perplexity rises: forgetting). Mixing in a share of general
questions whose answers are the untrained base's own greedy ones holds the adapter near the
base outside the repo, at the cost of that share of the training time. The prompts are fixed
(`prompts.jsonl`, written once by `scripts/make_replay_prompts.py`, disjoint from the guard
set, which must stay unseen); the answers are generated once per base and cached in the
state dir.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import structlog

from guardian.core.jsonl import read_jsonl, write_jsonl
from guardian.core.schema import Sample
from guardian.ml.base_model import BaseModelRef, load_model_and_tokenizer
from guardian.ml.scoring import generate_with_cuts

__all__ = ["PROMPTS_FILE", "replay_digest", "replay_prompts", "replay_samples"]

log = structlog.get_logger(__name__)

PROMPTS_FILE = Path(__file__).with_name("prompts.jsonl")
NEW_TOKENS = 64
GEN_BATCH = 16
_SENTENCE_END = re.compile(r"[.!?:)`\n](?=\s|$)")


def replay_prompts() -> list[dict[str, str]]:
    """Every shipped replay prompt (`input`, `part`), in file order."""
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text().splitlines() if line.strip()]
    return [{"input": str(r["input"]), "part": str(r["part"])} for r in rows]


def replay_digest() -> str:
    """What the replay answers depend on besides the base: the prompts and the generation
    settings (a change re-generates them and re-trains)."""
    blob = PROMPTS_FILE.read_bytes() + f"|{NEW_TOKENS}".encode()
    return hashlib.sha256(blob).hexdigest()


def _trim(answer: str, cut: bool) -> str:
    """A cut answer ends at its last full sentence ("" if it has none), so replay never
    teaches the model to stop mid-sentence."""
    text = answer.strip()
    if not cut:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


def _generate(ref: BaseModelRef) -> list[Sample]:
    """The base's greedy answer to every prompt; prompts it leaves unanswered are dropped."""
    model, tok = load_model_and_tokenizer(ref.path)
    model.eval()
    prompts = replay_prompts()
    questions = [Sample(input=p["input"], output="") for p in prompts]
    log.info("replay.generate", prompts=len(prompts), base=ref.spec)
    answers, cuts = generate_with_cuts(model, tok, questions, NEW_TOKENS, GEN_BATCH)
    out: list[Sample] = []
    for prompt, answer, cut in zip(prompts, answers, cuts, strict=True):
        text = _trim(answer, cut)
        if text:
            meta: dict[str, Any] = {"source": "replay", "part": prompt["part"]}
            out.append(Sample(input=prompt["input"], output=text, metadata=meta))
    return out


def _cached(ref: BaseModelRef, home: Path) -> list[Sample]:
    """The replay pool for this base, generated on first use and kept in `<home>/replay/`."""
    path = home / "replay" / f"{ref.fingerprint[:16]}-{replay_digest()[:16]}.jsonl"
    if path.is_file():
        return list(read_jsonl(path, Sample))
    pool = _generate(ref)
    write_jsonl(path, pool)
    return pool


def replay_samples(ref: BaseModelRef, home: Path, n: int, seed: int) -> list[Sample]:
    """`n` replay samples for a training run: the base-answered pool in a seeded order,
    cycled when `n` exceeds it (none when `n` is 0)."""
    if n <= 0:
        return []
    pool = _cached(ref, home)
    if not pool:
        return []
    order = list(range(len(pool)))
    random.Random(f"guardian-replay:{seed}").shuffle(order)
    return [pool[order[i % len(pool)]] for i in range(n)]
