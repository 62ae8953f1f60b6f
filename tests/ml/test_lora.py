from __future__ import annotations

import random
from typing import Any

import pytest

from guardian.core.schema import Sample
from guardian.ml.answer_loss import batch_loss, loss_parts, val_loss
from guardian.ml.prompting import (
    BUCKET_BATCHES,
    BatchPlan,
    EncodedExample,
    collate,
    encode_example,
    epoch_batches,
)
from guardian.ml.scoring import answer_nll
from tests.tinymodel import make_tiny_base


def _examples(lengths: list[int]) -> list[EncodedExample]:
    return [
        EncodedExample(list(range(n)), [-100] * (n - 1) + [1], n - 1, n, False) for n in lengths
    ]


def _varied_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(20, 260) for _ in range(n)]


def test_grouped_batches_cover_every_example_once_per_epoch() -> None:
    lengths = _varied_lengths(1003)
    for epoch in range(3):
        batches = epoch_batches(lengths, 8, seed=1, epoch=epoch)
        assert sorted(i for b in batches for i in b) == list(range(1003))
        assert len(batches) == 126 and sorted(len(b) for b in batches)[1:] == [8] * 125
        assert batches == epoch_batches(lengths, 8, seed=1, epoch=epoch)
    assert epoch_batches(lengths, 8, 1, 0) != epoch_batches(lengths, 8, 1, 1)
    assert epoch_batches(lengths, 8, 1, 0) != epoch_batches(lengths, 8, 2, 0)
    # lengths are sorted within a bucket of BUCKET_BATCHES batches, but the batch order is random
    widths = [max(lengths[i] for i in b) for b in epoch_batches(lengths, 8, 1, 0)]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)
    assert len(lengths) > 2 * 8 * BUCKET_BATCHES


def test_grouping_pads_far_less_than_random_batches() -> None:
    examples = _examples(_varied_lengths(800))
    n_micro = 3 * 100  # three epochs
    grouped = BatchPlan(examples, 8, seed=0).stats(n_micro)
    plain = BatchPlan(examples, 8, seed=0, grouped=False).stats(n_micro)
    assert grouped.examples == plain.examples == 2400
    assert grouped.tokens == plain.tokens == 3 * sum(len(ex.input_ids) for ex in examples)
    assert plain.pad_fraction > 0.3
    assert grouped.pad_fraction < 0.05
    assert BatchPlan(_examples([30] * 16), 4, seed=0).stats(8).pad_fraction == 0.0


def test_with_files_the_first_batches_cover_every_file_and_prefixes_stay_stratified() -> None:
    # one big file, a middling one, and 40 files of one or two samples each
    groups = ["big.py"] * 600 + ["mid.py"] * 150 + [f"f{i}.py" for i in range(40) for _ in (0, 1)]
    lengths = _varied_lengths(len(groups))
    examples = [
        EncodedExample(list(range(n)), [-100] * (n - 1) + [1], n - 1, n, False, g)
        for n, g in zip(lengths, groups, strict=True)
    ]
    plan = BatchPlan(examples, 8, seed=4)
    assert sorted(i for b in range(plan.per_epoch) for i in plan.indices(b)) == list(range(830))
    # 42 files: one example of each fills the first ceil(42 / 8) = 6 batches (48 examples)
    assert plan.groups_seen(6) == set(groups)
    assert len(plan.groups_seen(3)) < 42
    # the next bucket (batches 6-55) holds each file's share of the rest (76%, 19%, 5%)
    bucket = [groups[i] for b in range(6, 56) for i in plan.indices(b)]
    assert len(bucket) == 400
    assert 0.68 < bucket.count("big.py") / 400 < 0.84
    assert 0.12 < bucket.count("mid.py") / 400 < 0.26
    # still length-grouped, and a pure function of the seed
    assert plan.stats(plan.per_epoch).pad_fraction < 0.08
    assert BatchPlan(examples, 8, seed=4).indices(50) == plan.indices(50)
    assert BatchPlan(examples, 8, seed=5).indices(50) != plan.indices(50)


def test_batch_of_an_index_is_the_same_in_a_fresh_plan() -> None:
    """A resumed run builds a new plan and asks for batch k directly: same examples as before."""
    examples = _examples(_varied_lengths(50))
    first = BatchPlan(examples, 4, seed=3)
    seen = [first.indices(i) for i in range(40)]  # crosses three epoch boundaries
    resumed = BatchPlan(examples, 4, seed=3)
    assert [resumed.indices(i) for i in range(39, 9, -1)] == seen[10:][::-1]
    assert resumed.batch(17) == [examples[i] for i in seen[17]]
    with pytest.raises(ValueError, match="at least one example"):
        BatchPlan([], 4, seed=0)


@pytest.fixture(scope="module")
def lora_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    from guardian.ml.base_model import load_model_and_tokenizer
    from guardian.steps.train import ALL_LINEAR

    base = make_tiny_base(tmp_path_factory.mktemp("tiny") / "base")
    model, tok = load_model_and_tokenizer(base)
    torch.manual_seed(0)
    # random A and B (not B = 0), so the adapter really changes the loss
    config = LoraConfig(r=4, lora_alpha=8, target_modules=ALL_LINEAR, init_lora_weights=False)
    return get_peft_model(model, config), tok


def _batch(tok: Any, n_words: list[int]) -> list[EncodedExample]:
    samples = [
        Sample(input=f"Where is {' '.join(['word'] * n)} defined?", output=f"In {n}.py.")
        for n in n_words
    ]
    return [encode_example(tok, s, max_len=256) for s in samples]


def _lora_grads(model: Any) -> dict[str, Any]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_answer_only_loss_and_grads_equal_the_plain_path(lora_model: tuple[Any, Any]) -> None:
    model, tok = lora_model
    examples = _batch(tok, [1, 7, 30, 3])
    batch = collate(examples, tok.pad_token_id)
    assert (batch["attention_mask"] == 0).any(), "the batch should hold padding"
    parts = loss_parts(model)
    assert parts is not None and parts[1] is model.get_base_model().lm_head
    model.train()
    model.zero_grad()
    plain = model(**batch).loss
    plain.backward()
    plain_grads = _lora_grads(model)
    model.zero_grad()
    fast = batch_loss(model, batch, parts)
    fast.backward()
    fast_grads = _lora_grads(model)
    assert float(fast.detach()) == pytest.approx(float(plain.detach()), abs=1e-4)
    assert plain_grads.keys() == fast_grads.keys() and len(plain_grads) == 2 * 7 * 2
    for name, grad in plain_grads.items():
        assert fast_grads[name].allclose(grad, atol=1e-5), name
    model.zero_grad()


def test_val_loss_matches_the_scoring_nll(lora_model: tuple[Any, Any]) -> None:
    model, tok = lora_model
    examples = _batch(tok, [2, 11, 5, 19, 1])
    per_item = answer_nll(model, examples, 2, tok.pad_token_id)
    expected = sum(s for s, _ in per_item) / sum(n for _, n in per_item)
    model.train()
    fast = val_loss(model, examples, 2, tok.pad_token_id, loss_parts(model))
    assert model.training, "val_loss restores the training mode"
    assert fast == pytest.approx(expected, abs=1e-4)
    assert val_loss(model, examples, 2, tok.pad_token_id, None) == pytest.approx(expected, 1e-6)
    assert val_loss(model, [], 2, tok.pad_token_id, None) is None


def test_models_without_a_body_head_split_use_the_plain_loss() -> None:
    class Opaque:
        config = None

    assert loss_parts(Opaque()) is None

    class SoftCapped:
        base_model_prefix = "model"
        model = staticmethod(lambda **kw: None)
        config = type("C", (), {"final_logit_softcapping": 30.0})()

        def get_output_embeddings(self) -> object:
            return object()

    SoftCapped.__name__ = "GemmaForCausalLM"
    assert loss_parts(SoftCapped()) is None


def test_generation_reports_answers_that_ran_out_of_tokens(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import torch

    from guardian.ml.base_model import load_model_and_tokenizer
    from guardian.ml.scoring import generate_with_cuts

    model, tok = load_model_and_tokenizer(make_tiny_base(tmp_path_factory.mktemp("gen")))
    samples = [Sample(input="Where is `scan_repo` defined?", output="")] * 2
    head = model.get_output_embeddings().weight
    eos = tok.eos_token_id
    saved = head[eos].detach().clone()
    with torch.no_grad():
        head[eos] = -head.abs().max() * 50  # the end token never wins a greedy step
        _, never = generate_with_cuts(model, tok, samples, 4, 2)
        head[eos] = head.abs().max() * 50  # the end token wins the first step
        answers, ended = generate_with_cuts(model, tok, samples, 4, 2)
        head[eos] = saved
    assert never == [True, True]
    assert ended == [False, False] and answers == ["", ""]
