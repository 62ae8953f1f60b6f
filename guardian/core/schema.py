"""Records that cross step boundaries (chunks, samples) and the strict base every record uses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Language = Literal["python", "javascript", "typescript", "go"]
ChunkKind = Literal["function", "method", "class"]


class StrictModel(BaseModel):
    """Base of every config and record model: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid")


class Chunk(StrictModel):
    """One mined code unit (function, method or class) at one commit."""

    id: str
    repo: str
    commit: str
    path: str = Field(description="relative to the repo root, POSIX separators")
    language: Language
    kind: ChunkKind
    name: str
    qualname: str
    signature: str
    docstring: str | None = None
    code: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    content_hash: str
    clone_of: str | None = Field(
        default=None,
        description="id of the first chunk (in output order) with the same normalised tokens",
    )

    @model_validator(mode="after")
    def _lines_in_order(self) -> Chunk:
        if self.end_line < self.start_line:
            raise ValueError(f"end_line {self.end_line} is before start_line {self.start_line}")
        return self


# The RAFT answer format: quoted evidence between the quote markers, then the final answer.
BEGIN_QUOTE = "##begin_quote##"
END_QUOTE = "##end_quote##"
ANSWER_TAG = "<ANSWER>:"


def tagged_answer(text: str) -> str | None:
    """The text after the last answer tag, or None when there is none (or it is empty)."""
    head, sep, tail = text.rpartition(ANSWER_TAG)
    return (tail.strip() or None) if sep else None


class Sample(StrictModel):
    """One instruction-tuning example; metadata carries provenance and RAFT fields."""

    instruction: str | None = None
    input: str
    output: str
    metadata: dict[str, Any] = Field(default_factory=dict)


ProbeKind = Literal["file", "params", "returns", "callers", "members"]


class ProbeItem(StrictModel):
    """One held-out knowledge question about a mined symbol and the facts that answer it.

    `expected` are the right facts and `rivals` the wrong ones of the same sort (other
    files, other symbols' parameters); `need` is how many expected facts an answer must
    name. `aliases` maps another spelling of a fact (a unique file name, a module path, a
    short name) to the fact. `doc_ids` are the retrieval documents that state the answer.
    """

    id: str
    kind: ProbeKind
    question: str
    symbol: str
    path: str
    seen: bool = Field(description="whether the symbol's file was in the training split")
    expected: list[str] = Field(min_length=1)
    need: int = Field(ge=1)
    rivals: list[str] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    doc_ids: list[str] = Field(default_factory=list)
