"""Asking a repo's model about its code: `guardian ask`, one question or a batch.

Open-book by default: the repo's current chunks (mined at HEAD with the playbook's mine
params) are indexed with the same documents and retrieval the synthesis trains on, and the
top-k go in front of the question in the RAFT format. Closed-book asks the bare question,
as `ollama run` users do. The model is the repo's champion, the untrained base, or a train
output dir; it is loaded once for the whole batch.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.core.fsutil import scratch_dir
from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Chunk, Sample
from guardian.engine.citations import Citation, cite, readable
from guardian.engine.keys import resolve_params
from guardian.engine.resolve import champion_model
from guardian.errors import ConfigError, ModelError
from guardian.ml.adapters import is_model_dir, load_adapter
from guardian.steps import get_step
from guardian.steps.base import StepContext
from guardian.store.artifacts import scratch_root

if TYPE_CHECKING:
    from guardian.data.context import ContextIndex
    from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


@dataclass
class Answer:
    """One answered question: the answer as a person reads it, the raw generation, the
    documents shown and the evidence it quoted from them."""

    question: str
    answer: str
    raw: str
    documents: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)


@dataclass
class AskSetup:
    """What `ask` needs from config and skills: the model dir, base spec, context settings."""

    model_dir: Path | None
    base: str
    mine_params: Any
    synth: dict[str, Any]
    label: str


def ask_setup(
    cfg: GuardianConfig,
    skills: SkillsFile,
    playbook: str,
    repo: Path,
    model: str,
    store: StateStore,
) -> AskSetup:
    """Resolve which model answers (`champion`, `base` or a dir) and the playbook's settings."""
    book = skills.playbook(playbook)
    synth: dict[str, Any] = {}
    mine_params = None
    base = cfg.base_model
    for name in book.skills:
        skill = skills.skills[name]
        spec = get_step(skill.step)
        params = resolve_params(spec, skill, cfg)
        if spec.name == "mine":
            mine_params = params
        elif spec.name == "synthesize":
            synth = params.model_dump(mode="json")
        elif spec.provides == "model":
            base = str(getattr(params, "base", base))
    if mine_params is None:
        raise ConfigError(f"playbook '{playbook}' has no mine skill to read the repo with")
    if model == "base":
        return AskSetup(None, base, mine_params, synth, f"base:{base}")
    if model != "champion":
        return AskSetup(Path(model).expanduser(), base, mine_params, synth, model)
    champ = champion_model(store, skills, repo, playbook)
    return AskSetup(champ.model_dir, base, mine_params, synth, champ.name)


def current_chunks(repo: Path, home: Path, mine_params: Any) -> list[Chunk]:
    """The repo's chunks at HEAD, mined into a scratch dir that is removed afterwards."""
    out = scratch_dir(scratch_root(home), "ask-mine")
    try:
        ctx = StepContext(repo=repo, out_dir=out, home=home, run_id="ask")
        get_step("mine").fn(ctx, mine_params)
        return list(read_jsonl(out / "chunks.jsonl", Chunk))
    finally:
        shutil.rmtree(out, ignore_errors=True)


class Asker:
    """A loaded model plus (open-book) the repo's retrieval index; answers in batches."""

    def __init__(
        self,
        setup: AskSetup,
        home: Path,
        index: ContextIndex | None,
        chunks: Sequence[Chunk] = (),
    ) -> None:
        from guardian.ml.base_model import load_model_and_tokenizer, resolve_base

        self.setup = setup
        self.index = index
        self.chunks = {c.id: c for c in chunks}
        model_dir = setup.model_dir
        if model_dir is not None and not is_model_dir(model_dir):
            raise ModelError(f"{model_dir}: not a model dir (no adapter/adapter_config.json)")
        ref = resolve_base(setup.base, home)
        model: Any
        model, self.tok = load_model_and_tokenizer(ref.path)
        if model_dir is not None:
            model = load_adapter(model, model_dir / "adapter")
        self.model = model.eval()

    def ask(
        self, questions: list[str], *, k: int = 3, max_new_tokens: int = 96, batch_size: int = 8
    ) -> list[Answer]:
        """Greedy answers to the questions, open-book when an index was given; open-book
        quotes are held verbatim to the retrieved documents (ml/grounding.py)."""
        from guardian.ml.scoring import generate_answers

        samples: list[Sample] = []
        docs: list[list[str]] = []
        for q in questions:
            if self.index is None:
                samples.append(Sample(input=q, output=""))
                docs.append([])
                continue
            sample, ids = self.index.prompt(q, k=k)
            samples.append(sample)
            docs.append(ids)
        raw = generate_answers(
            self.model,
            self.tok,
            samples,
            max_new_tokens,
            batch_size,
            grounded=self.index is not None,
        )
        return [
            Answer(q, readable(r), r, d, cite(r, d, self.chunks))
            for q, r, d in zip(questions, raw, docs, strict=True)
        ]


def build_index(chunks: list[Chunk], synth: dict[str, Any]) -> ContextIndex:
    """The open-book index over chunks, with the documents the model was trained on."""
    from guardian.data.context import ContextIndex

    return ContextIndex.for_synthesis(chunks, synth)
