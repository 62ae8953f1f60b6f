"""Records that cross step boundaries (chunks, samples) and the strict base every record uses."""

from __future__ import annotations

import re
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
# A quoted span of an answer, its text as group 1.
QUOTED = re.compile(re.escape(BEGIN_QUOTE) + "(.*?)" + re.escape(END_QUOTE), re.S)


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


AskKind = Literal["explain", "howto", "where", "usage", "code"]


class AskItem(StrictModel):
    """One held-out question of a kind people ask about a mined symbol, and what answers it.

    Scored without a judge (guardian/evaluation/answers.py) by what the repo states: the
    symbol or file named, the `content` words an explanation should carry, a call matching
    `params`, code with the right signature that passes the repo's `tests`. `start_line` to
    `end_line` is the definition a generated body replaces when those tests are run.
    """

    id: str = Field(description="stable: a sha of kind, path, qualname and wording index")
    kind: AskKind
    question: str
    qualname: str = Field(description="the symbol the question is about")
    name: str = Field(description="its short name")
    path: str
    start_line: int = Field(ge=1)
    end_line: int = Field(default=0, ge=0, description="last line of its definition")
    language: str
    signature: str = ""
    params: list[str] = Field(default_factory=list, description="parameter names, no self/cls")
    call: str = Field(default="", description="a call passing every required parameter")
    summary: str = Field(default="", description="the docstring's first paragraph")
    content: list[str] = Field(default_factory=list, description="words an explanation carries")
    callers: list[str] = Field(default_factory=list, description="qualnames that call it")
    doc_ids: list[str] = Field(default_factory=list, description="documents stating the answer")
    seen: bool = Field(default=False, description="its file was in the training split")
    tests: list[str] = Field(default_factory=list, description="repo test files exercising it")
    reference: str = Field(default="", description="its real code (code kind)")
