"""What a user reads: the model's answer without training markup, and its evidence as
`path:line` citations of the documents it quoted.

Open-book answers quote their documents between quote markers (held verbatim by
ml/grounding.py); a quote found in a unit's code is cited at its own line, one found in the
unit's document (its header, signature or docstring summary) at the unit's first line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from guardian.core.schema import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, QUOTED, Chunk

_LABEL = re.compile(r"##\s*Reason\s*:\s*", re.I)


class Citation(BaseModel):
    """One piece of evidence: where it is in the repo and the words quoted from it."""

    path: str
    line: int
    quote: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def readable(raw: str) -> str:
    """The answer a person reads: the final answer when the model gave one, quote markers and
    reasoning labels removed (the quoted words stay, in quotation marks)."""
    head, sep, tail = raw.rpartition(ANSWER_TAG)
    text = tail if sep and tail.strip() else raw
    text = QUOTED.sub(lambda m: f"“{m.group(1).strip()}”", text)
    text = text.replace(BEGIN_QUOTE, "").replace(END_QUOTE, "").replace(ANSWER_TAG, "")
    return _LABEL.sub("", text).strip()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _locate(quote: str, chunk: Chunk) -> int | None:
    """The line of `chunk` a quote comes from: its own line in the code, else the unit's
    first line when the quote is from its document (header, signature, docstring)."""
    code = chunk.code
    at = code.find(quote)
    if at >= 0:
        return chunk.start_line + code[:at].count("\n")
    flat = _flat(quote)
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if flat and flat in _flat(line):
            return chunk.start_line + i
    names = (chunk.path, chunk.qualname, _flat(chunk.signature), _flat(chunk.docstring or ""))
    if any(flat in name or name in flat for name in names if name):
        return chunk.start_line
    return None


def cite(raw: str, doc_ids: Sequence[str], chunks: Mapping[str, Chunk]) -> list[Citation]:
    """The documents an answer quoted, as `path:line` citations in the order quoted."""
    found: list[Citation] = []
    for match in QUOTED.finditer(raw):
        quote = match.group(1).strip()
        if not quote:
            continue
        for doc_id in doc_ids:
            if doc_id.startswith("module:"):
                path = doc_id.removeprefix("module:")
                where: tuple[str, int] | None = (path, 1) if path in quote else None
            else:
                chunk = chunks.get(doc_id)
                line = _locate(quote, chunk) if chunk is not None else None
                where = (chunk.path, line) if chunk is not None and line is not None else None
            if where is not None:
                cited = Citation(path=where[0], line=where[1], quote=quote)
                if all(str(c) != str(cited) for c in found):
                    found.append(cited)
                break
    return found
