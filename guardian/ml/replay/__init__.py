"""Replay against forgetting: general questions answered by the base model itself.

Fine-tuning on one repo's Q/A pulls a small model's answers on everything else toward that
repo's style (the guard set's perplexity rises: forgetting). Mixing in a share of general
questions whose answers are the untrained base's own greedy ones holds the adapter near the
base outside the repo, at the cost of that share of the training time. The prompts are fixed
(`prompts.jsonl`, written once by `scripts/make_replay_prompts.py`, disjoint from the guard
set, which must stay unseen); the answers are generated once per base and cached in the
state dir, each only when a run first uses it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections.abc import Callable
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
# Bumped when the way a run picks its prompts changes (it changes what a run trains on).
_SELECTION = "first-n-of-seeded-order"
_SENTENCE_END = re.compile(r"[.!?:)`\n](?=\s|$)")


def replay_prompts() -> list[dict[str, str]]:
    """Every shipped replay prompt (`input`, `part`), in file order."""
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text().splitlines() if line.strip()]
    return [{"input": str(r["input"]), "part": str(r["part"])} for r in rows]


def replay_digest() -> str:
    """What the replay answers depend on besides the base: the prompts, the generation
    settings and how a run picks its prompts (a change re-generates them and re-trains)."""
    blob = PROMPTS_FILE.read_bytes() + f"|{NEW_TOKENS}|{_SELECTION}".encode()
    return hashlib.sha256(blob).hexdigest()


def _trim(answer: str, cut: bool) -> str:
    """A cut answer ends at its last full sentence ("" if it has none), so replay never
    teaches the model to stop mid-sentence."""
    text = answer.strip()
    if not cut:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


def _generate(load: Callable[[], Any], prompts: list[dict[str, str]]) -> list[Sample]:
    """The base's greedy answer to each prompt, trimmed; an unanswered prompt gets "" (kept,
    so it is not asked again). `load` gives the base (model, tokenizer), loaded once."""
    model, tok = load()
    questions = [Sample(input=p["input"], output="") for p in prompts]
    log.info("replay.generate", prompts=len(prompts))
    answers, cuts = generate_with_cuts(model, tok, questions, NEW_TOKENS, GEN_BATCH)
    return [
        Sample(
            input=p["input"], output=_trim(a, c), metadata={"source": "replay", "part": p["part"]}
        )
        for p, a, c in zip(prompts, answers, cuts, strict=True)
    ]


def replay_samples(ref: BaseModelRef, home: Path, n: int, seed: int) -> list[Sample]:
    """`n` replay samples for a training run: the first `n` prompts of a seeded order that the
    base answers (all it answers when `n` exceeds them), cycled up to `n`; none when `n` is 0.

    Answers are cached in `<home>/replay/` per base; only prompts not yet answered there are
    generated, so a small run pays for the few it uses.
    """
    if n <= 0:
        return []
    prompts = replay_prompts()
    random.Random(f"guardian-replay:{seed}").shuffle(prompts)
    path = home / "replay" / f"{ref.fingerprint[:16]}-{replay_digest()[:16]}.jsonl"
    cache = {s.input: s for s in read_jsonl(path, Sample)} if path.is_file() else {}

    @functools.cache
    def load() -> tuple[Any, Any]:
        model, tok = load_model_and_tokenizer(ref.path)
        return model.eval(), tok

    pool: list[Sample] = []
    pos = 0
    while len(pool) < n and pos < len(prompts):
        chunk = prompts[pos : pos + max(n - len(pool), GEN_BATCH)]
        pos += len(chunk)
        missing = [p for p in chunk if p["input"] not in cache]
        if missing:
            cache |= {s.input: s for s in _generate(load, missing)}
            write_jsonl(path, cache.values())
        pool += [cache[p["input"]] for p in chunk if cache[p["input"]].output]
    pool = pool[:n]
    return [pool[i % len(pool)] for i in range(n)] if pool else []
