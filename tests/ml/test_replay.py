from __future__ import annotations

import builtins
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Sample
from guardian.evaluation.guard import guard_samples
from guardian.ml import replay
from guardian.ml.base_model import resolve_base
from guardian.steps.base import StepContext
from guardian.steps.train import Params, train_model
from tests.tinymodel import make_tiny_base, tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return make_tiny_base(root / "base"), tiny_dataset(root / "data")


def test_prompts_are_disjoint_from_the_guard_set() -> None:
    prompts = replay.replay_prompts()
    assert len(prompts) >= 150
    assert {p["part"] for p in prompts} == {"stdlib", "concept", "code"}
    assert len({p["input"] for p in prompts}) == len(prompts)
    guard = {s.input for s in guard_samples()}
    assert not guard & {p["input"] for p in prompts}
    # the guard asks about built-ins by their bare names; replay never names one
    named = {m for p in prompts for m in re.findall(r"`([\w.]+)`", p["input"])}
    assert named and not named & set(dir(builtins))
    assert all("." in name for name in named)


def test_trim_keeps_whole_sentences_of_a_cut_answer() -> None:
    assert replay._trim("It sorts. Then it", cut=True) == "It sorts."
    assert replay._trim("no end at all", cut=True) == ""
    assert replay._trim(" Done, uncut and all ", cut=False) == "Done, uncut and all"


def _ctx(tmp_path: Path, data: Path, home: Path) -> StepContext:
    out = tmp_path / "out"
    out.mkdir(parents=True)
    return StepContext(repo=tmp_path, out_dir=out, home=home, inputs={"dataset": data})


def test_training_mixes_in_the_base_s_own_answers_cached_per_base(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from guardian.ml.base_model import load_model_and_tokenizer
    from guardian.ml.prompting import prompt_ids

    base, data = tiny
    home = tmp_path / "home"
    params = Params(base=str(base), max_steps=2, batch_size=4, replay_fraction=0.25)
    trained = train_model(_ctx(tmp_path / "a", data, home), params)
    assert trained.result.metrics["n_train"] == 24 and trained.result.metrics["n_replay"] == 6

    # only as many prompts as it took to get 6 answered ones were generated (whole batches),
    # and they were cached
    (cache,) = (home / "replay").iterdir()
    pool = list(read_jsonl(cache, Sample))
    answered = [s for s in pool if s.output]
    assert len(answered) >= 6 and len(pool) < len(replay.replay_prompts())
    assert all(s.metadata["source"] == "replay" for s in pool)
    # the answer is what the untrained base itself says, by plain greedy `generate`
    model, tok = load_model_and_tokenizer(base)
    sample = answered[0]
    ids = torch.tensor([prompt_ids(tok, Sample(input=sample.input, output=""))])
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=replay.NEW_TOKENS,
            do_sample=False, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
    said = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
    assert said.startswith(sample.output)

    # a later run generates only the prompts not yet cached
    asked: list[int] = []
    real_generate = replay._generate

    def counting(load: Any, prompts: list[dict[str, str]]) -> list[Sample]:
        asked.append(len(prompts))
        return real_generate(load, prompts)

    monkeypatch.setattr(replay, "_generate", counting)
    ref = resolve_base(str(base), home)
    again = replay.replay_samples(ref, home, 6, seed=0)
    assert asked == [] and len(again) == 6
    assert {s.input for s in again} <= {s.input for s in pool}
    want = len(answered) + 3
    more = replay.replay_samples(ref, home, want, seed=0)
    assert asked and len(more) == want
    assert {s.input for s in again} <= {s.input for s in more}
    grown = list(read_jsonl(cache, Sample))
    assert len(grown) == len(pool) + sum(asked)  # nothing asked twice
    assert {s.input for s in pool} <= {s.input for s in grown}
    assert replay.replay_samples(ref, home, 0, seed=0) == []


def test_replay_cycles_the_answered_prompts_when_more_are_wanted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = [{"input": f"q{i}", "part": "concept"} for i in range(4)]
    monkeypatch.setattr(replay, "replay_prompts", lambda: list(prompts))

    def fake_base(load: Any, asked: list[dict[str, str]]) -> list[Sample]:
        # the base leaves q3 unanswered
        return [Sample(input=p["input"], output="" if p["input"] == "q3" else "a") for p in asked]

    monkeypatch.setattr(replay, "_generate", fake_base)
    ref = SimpleNamespace(fingerprint="f" * 64, spec="fake")
    got = replay.replay_samples(ref, tmp_path, 7, seed=1)  # type: ignore[arg-type]
    assert len(got) == 7 and {s.input for s in got} == {"q0", "q1", "q2"}
    # the first three are distinct, then the same order repeats
    assert [s.input for s in got[3:6]] == [s.input for s in got[:3]]


def test_replay_share_is_keyed(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from guardian.steps.train import SPEC

    base, _ = tiny
    with_replay = SPEC.extra_key(Params(base=str(base)), tmp_path)  # type: ignore[misc]
    without = SPEC.extra_key(Params(base=str(base), replay_fraction=0.0), tmp_path)  # type: ignore[misc]
    assert with_replay != without and replay.replay_digest() in str(with_replay)
    assert json.dumps(replay.replay_prompts())  # the shipped file parses
