"""Is a GGUF export the model that was trained? llama.cpp (llama-cpp-python) against torch.

Both sides score the same samples, prompted by ml/prompting.py as the evaluate step prompts
them: answer-token perplexity (torch by ml/scoring.py) and greedy answers, decoded by the HF
tokenizer and compared as exact text (or their first k tokens). llama.cpp tokenizes the texts
itself with the GGUF's vocabulary; ids differing from the HF tokenizer's are counted. It runs
the items as the sequences of one batch (16 decode calls for 50 answers of 16 tokens), with
weights loaded without its extra buffers (AMX, repacked copies): it computes on the tensors
as stored, and CPUs that advertise AMX in VMs that do not enable it crash in those kernels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardian.core.schema import Sample
from guardian.errors import ModelError
from guardian.ml.prompting import encode_example

if TYPE_CHECKING:
    import numpy as np
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

THREADS = 2
BATCH = 512  # tokens per llama.cpp decode call; one item must fit
Row = tuple[int, int, int, bool]  # token, position, sequence, logits wanted


@dataclass(frozen=True)
class Side:
    """One model's scores on the items: per-item (NLL, answer tokens), greedy answers."""

    nll: list[tuple[float, int]]
    answers: list[str]
    eval_seconds: float = 0.0  # scoring prompt + answer
    eval_tokens: int = 0
    gen_seconds: float = 0.0  # greedy decoding, prompts included
    gen_tokens: int = 0
    token_mismatches: int = 0


def perplexity(nll: Sequence[tuple[float, int]]) -> float:
    """exp(summed NLL / summed tokens) over per-item (NLL, tokens) pairs (nan without tokens)."""
    tokens = sum(n for _, n in nll)
    return math.exp(sum(t for t, _ in nll) / tokens) if tokens else float("nan")


def item_texts(tok: PreTrainedTokenizerBase, sample: Sample) -> tuple[str, str, list[int]]:
    """A sample's prompt and answer texts as the evaluate step encodes them, and its HF ids."""
    ex = encode_example(tok, sample, 1 << 20)
    head, tail = ex.input_ids[: ex.prompt_len], ex.input_ids[ex.prompt_len :]
    text = [str(tok.decode(i, clean_up_tokenization_spaces=False)) for i in (head, tail)]  # exact
    return text[0], text[1], ex.input_ids


def load_gguf(path: Path, *, threads: int = THREADS, lora: Path | None = None) -> Any:
    """A llama.cpp model (`llama_cpp.Llama`, CPU, quiet) on `path`, without extra buffers;
    `lora` applies an adapter GGUF on top (`--adapter-only` exports)."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(
            "llama-cpp-python is not installed (pip install llama-cpp-python==0.3.36)"
        ) from exc
    defaults = llama_cpp.llama_model_default_params

    def plain_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_cpp.llama_model_default_params = plain_buffers  # read by Llama.__init__
    try:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=BATCH,
            n_threads=threads,
            verbose=False,
            lora_path=str(lora) if lora is not None else None,
        )
    except ValueError as exc:  # llama.cpp refused the file
        raise ModelError(f"{path}: llama.cpp cannot load it ({exc})") from exc
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = defaults


def _llama(gguf: Path | Any) -> Any:
    return load_gguf(gguf) if isinstance(gguf, Path) else gguf


def gguf_tokens(gguf: Path | Any, text: str) -> list[int]:
    """llama.cpp's token ids for text (special tokens parsed, no BOS added)."""
    return list(_llama(gguf).tokenize(text.encode("utf-8"), add_bos=False, special=True))


class _Batched:
    """A llama.cpp context of its own on a loaded model: many sequences per decode call."""

    def __init__(self, llm: Any, n_ctx: int, n_seq: int) -> None:
        import llama_cpp

        self.api, self.n_vocab = llama_cpp, int(llm.n_vocab())
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = max(n_ctx, BATCH), BATCH, BATCH
        params.n_seq_max, params.kv_unified = max(1, min(n_seq, 256)), True
        params.n_threads, params.n_threads_batch = llm.n_threads, llm.n_threads_batch
        self.ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise ModelError("llama.cpp: cannot create a context")
        adapter = getattr(llm, "_lora_adapter", None)  # a --lora load: this context needs it too
        if adapter is not None:
            import ctypes

            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(float(llm.lora_scale))
            if llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, scales):
                raise ModelError("llama.cpp: cannot apply the LoRA adapter")
        self.batch = llama_cpp.llama_batch_init(BATCH, 0, 1)

    def decode(self, rows: Sequence[Row]) -> list[np.ndarray]:
        """Decode up to BATCH rows at once; the logits of the rows that want them, in order."""
        import numpy as np

        batch = self.batch
        for i, (token, pos, seq, wanted) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
            batch.seq_id[i][0], batch.logits[i] = seq, wanted
        batch.n_tokens = len(rows)
        code = self.api.llama_decode(self.ctx, batch)
        if code != 0:
            raise ModelError(f"llama.cpp: llama_decode failed ({code})")
        get = self.api.llama_get_logits_ith
        wanted_at = [i for i, row in enumerate(rows) if row[3]]
        return [np.ctypeslib.as_array(get(self.ctx, i), shape=(self.n_vocab,)) for i in wanted_at]

    def clear(self) -> None:
        """Forget every sequence."""
        self.api.llama_memory_clear(self.api.llama_get_memory(self.ctx), True)

    def __enter__(self) -> _Batched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.llama_batch_free(self.batch)
        self.api.llama_free(self.ctx)


def _packs(lengths: Sequence[int]) -> list[list[int]]:
    """Consecutive indices grouped so each group's lengths sum to at most BATCH (<= 256)."""
    packs: list[list[int]] = []
    used = BATCH
    for i, n in enumerate(lengths):
        if n > BATCH:
            raise ModelError(f"parity item of {n} tokens exceeds llama.cpp's batch of {BATCH}")
        if used + n > BATCH or len(packs[-1]) == 256:
            packs, used = [*packs, []], 0
        packs[-1].append(i)
        used += n
    return packs


def _nll(logits: Sequence[np.ndarray], targets: Sequence[int]) -> float:
    """Summed -log softmax(logits[i])[targets[i]], in float64."""
    import numpy as np

    rows = np.stack(logits).astype(np.float64)
    top = rows.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
    return float((lse - rows[np.arange(len(targets)), list(targets)]).sum())


def gguf_answer_nll(gguf: Path | Any, items: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
    """Per (prompt, answer) text pair, tokenized apart: llama.cpp's summed answer NLL, count."""
    llm = _llama(gguf)
    encoded = [(gguf_tokens(llm, p), gguf_tokens(llm, a)) for p, a in items]
    seqs = [head + tail for head, tail in encoded]
    out: list[tuple[float, int]] = []
    with _Batched(llm, BATCH, len(seqs)) as run:
        for pack in _packs([len(s) for s in seqs]):
            rows: list[Row] = []
            for seq, i in enumerate(pack):
                start = len(encoded[i][0])
                rows += [
                    (t, p, seq, start - 1 <= p < len(seqs[i]) - 1) for p, t in enumerate(seqs[i])
                ]
            logits = iter(run.decode(rows))
            for i in pack:
                tail = encoded[i][1]
                out.append((_nll([next(logits) for _ in tail], tail), len(tail)))
            run.clear()
    return out


def gguf_greedy(gguf: Path | Any, prompts: Sequence[str], new: int, stop: int) -> list[list[int]]:
    """llama.cpp's greedy continuation of each prompt: at most `new` ids, ending at `stop`."""
    import numpy as np

    if len(prompts) > 256:
        raise ModelError(f"greedy parity decodes at most 256 prompts together ({len(prompts)})")
    llm = _llama(gguf)
    heads = [gguf_tokens(llm, p) for p in prompts]
    out: list[list[int]] = [[] for _ in heads]
    with _Batched(llm, sum(len(h) for h in heads) + len(heads) * new, len(heads)) as run:
        for pack in _packs([len(h) for h in heads]):
            rows = [(t, p, i, p == len(heads[i]) - 1) for i in pack for p, t in enumerate(heads[i])]
            for i, logits in zip(pack, run.decode(rows), strict=True):
                out[i].append(int(np.argmax(logits)))
        while live := [i for i, n in enumerate(out) if len(n) < new and n[-1] != stop]:
            for pack in _packs([1] * len(live)):
                picked = [live[k] for k in pack]
                rows = [(out[i][-1], len(heads[i]) + len(out[i]) - 1, i, True) for i in picked]
                for i, logits in zip(picked, run.decode(rows), strict=True):
                    out[i].append(int(np.argmax(logits)))
    return out


def torch_answer_nll(
    model: PreTrainedModel | PeftModel, tok: Any, samples: Sequence[Sample], batch_size: int = 8
) -> list[tuple[float, int]]:
    """Per sample: the torch model's summed answer NLL and answer tokens, as evaluate does."""
    from guardian.ml.scoring import answer_nll

    examples = [encode_example(tok, s, 1 << 20) for s in samples]
    return answer_nll(model, examples, batch_size, int(tok.pad_token_id))


def torch_side(
    model: PreTrainedModel | PeftModel,
    tok: PreTrainedTokenizerBase,
    samples: Sequence[Sample],
    new_tokens: int = 16,
    batch_size: int = 8,
) -> Side:
    """The torch model's answer NLL and greedy answers on the samples (ml/scoring.py)."""
    from guardian.ml.scoring import generate_answers

    t0 = time.perf_counter()
    nll = torch_answer_nll(model, tok, samples, batch_size)
    t1 = time.perf_counter()
    answers = generate_answers(model, tok, list(samples), new_tokens, batch_size)
    return Side(nll, answers, eval_seconds=t1 - t0, gen_seconds=time.perf_counter() - t1)


def gguf_side(
    gguf: Path | Any, tok: PreTrainedTokenizerBase, samples: Sequence[Sample], new_tokens: int = 16
) -> Side:
    """The GGUF's answer NLL and greedy answers under llama.cpp, and its token mismatches."""
    llm = _llama(gguf)
    items = [item_texts(tok, s) for s in samples]
    pairs = [(prompt, answer) for prompt, answer, _ in items]
    mismatches = sum(gguf_tokens(llm, p) + gguf_tokens(llm, a) != ids for p, a, ids in items)
    t0 = time.perf_counter()
    nll = gguf_answer_nll(llm, pairs)
    t1 = time.perf_counter()
    rows = gguf_greedy(llm, [p for p, _ in pairs], new_tokens, int(tok.eos_token_id))
    seconds = time.perf_counter() - t1
    answers = [str(tok.decode(row, skip_special_tokens=True)).strip() for row in rows]
    evaluated = sum(len(ids) for *_, ids in items)
    return Side(nll, answers, t1 - t0, evaluated, seconds, sum(map(len, rows)), mismatches)


def agreement(
    a: Sequence[str], b: Sequence[str], tok: PreTrainedTokenizerBase | None = None, k: int = 0
) -> float:
    """Share of equal answers (with `tok` and `k`: equal in their first k tokens)."""
    if len(a) != len(b) or not a:
        raise ValueError("agreement needs two answer lists of the same, non-zero length")
    if tok is None or not k:
        return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    ids = [[tok(x, add_special_tokens=False)["input_ids"][:k] for x in y] for y in (a, b)]
    return sum(x == y for x, y in zip(*ids, strict=True)) / len(a)


def compare(
    reference: Side, candidate: Side, tok: PreTrainedTokenizerBase, prefixes: Sequence[int] = ()
) -> dict[str, Any]:
    """Perplexities and their ratio - 1, greedy agreement (also per k of `prefixes`), mismatches."""
    ref, got = perplexity(reference.nll), perplexity(candidate.nll)
    return {
        "items": len(reference.nll),
        "answer_tokens": sum(n for _, n in reference.nll),
        "ppl_torch": ref,
        "ppl_gguf": got,
        "ppl_rel_diff": got / ref - 1.0,
        "agreement": agreement(reference.answers, candidate.answers),
        **{
            f"agreement_first_{k}": agreement(reference.answers, candidate.answers, tok, k)
            for k in prefixes
        },
        "token_mismatches": candidate.token_mismatches,
    }


def parity(
    model: PreTrainedModel | PeftModel,
    tok: PreTrainedTokenizerBase,
    gguf: Path | Any,
    samples: Sequence[Sample],
    new_tokens: int = 16,
    prefixes: Sequence[int] = (),
) -> dict[str, Any]:
    """Torch model (base + adapter) vs its GGUF export on the samples, as `compare` puts it."""
    ref = torch_side(model, tok, samples, new_tokens)
    return compare(ref, gguf_side(gguf, tok, samples, new_tokens), tok, prefixes)
