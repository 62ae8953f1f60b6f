"""Grounded quoting: while a generated answer is inside a `##begin_quote##` … `##end_quote##`
span, only tokens that keep the quote a verbatim substring of the prompt's documents are
allowed.

A RAFT-trained model answers by quoting a labelled line of its context and then stating the
answer; a small model sometimes misquotes (`Catalog.init` for `Catalog.__init__`) or quotes a
line that is not there. The constraint works on text, not token ids, because the same text
tokenizes differently in the prompt (`" inventory"` after `[1] `) and in the quote
(`"inventory"` after the marker). At each step only the `top_k` best tokens are tried, so
the cost is a few short decodes and substring tests per row; when none of them fits, the
quote is closed. Outside a quote nothing is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from guardian.core.schema import BEGIN_QUOTE, END_QUOTE

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = ["QuoteGrounding", "open_quote", "quote_may_continue"]


def open_quote(text: str) -> str | None:
    """The text of the quote still open at the end of `text`, or None outside a quote."""
    start = text.rfind(BEGIN_QUOTE)
    if start < 0 or END_QUOTE in text[start:]:
        return None
    return text[start + len(BEGIN_QUOTE) :]


def quote_may_continue(quote: str, piece: str, source: str) -> bool:
    """Whether appending `piece` to an open `quote` keeps it a substring of `source`, or
    begins (or carries on) the closing marker right after a grounded quote."""
    if (quote + piece) in source:
        return True
    for k in range(min(len(quote), len(END_QUOTE) - 1), -1, -1):
        if k and not quote.endswith(END_QUOTE[:k]):
            continue
        body = quote[: len(quote) - k] if k else quote
        rest = END_QUOTE[k:]
        if body in source and (rest.startswith(piece) or piece.startswith(rest)):
            return True
    return False


class QuoteGrounding:
    """A transformers logits processor that keeps every quote verbatim from its row's source.

    `sources[row]` is the text row `row` may quote (its prompt's documents); `prompt_width`
    is the left-padded prompt length, so generated tokens are `input_ids[:, prompt_width:]`.
    """

    def __init__(
        self,
        tok: PreTrainedTokenizerBase,
        sources: Sequence[str],
        prompt_width: int,
        top_k: int = 32,
    ) -> None:
        self.tok = tok
        self.sources = list(sources)
        self.width = prompt_width
        self.top_k = top_k
        self.close_id = int(tok.encode(END_QUOTE, add_special_tokens=False)[0])
        self._pieces: dict[int, str] = {}
        self.constrained_steps = 0

    def _piece(self, token_id: int) -> str:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = str(self.tok.decode([token_id]))
            self._pieces[token_id] = piece
        return piece

    def _allowed(self, quote: str, source: str, row_scores: Any) -> list[int]:
        ranked = row_scores.topk(min(self.top_k, row_scores.shape[-1])).indices.tolist()
        fits = [t for t in ranked if quote_may_continue(quote, self._piece(int(t)), source)]
        return [int(t) for t in fits] or [self._closing_id(quote)]

    def _closing_id(self, quote: str) -> int:
        """The token that carries on (or starts) the closing marker: the way out of a quote."""
        for k in range(min(len(quote), len(END_QUOTE) - 1), 0, -1):
            if quote.endswith(END_QUOTE[:k]):
                return int(self.tok.encode(END_QUOTE[k:], add_special_tokens=False)[0])
        return self.close_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
        """Mask, per row inside an open quote, every token that would break the quote."""
        import torch

        for row in range(input_ids.shape[0]):
            text = str(self.tok.decode(input_ids[row, self.width :], skip_special_tokens=True))
            quote = open_quote(text)
            if quote is None:
                continue
            allowed = self._allowed(quote, self.sources[row], scores[row])
            keep = scores[row, allowed].clone()
            scores[row] = -torch.inf
            scores[row, allowed] = keep
            self.constrained_steps += 1
        return scores
