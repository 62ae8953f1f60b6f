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


class Sample(StrictModel):
    """One instruction-tuning example; metadata carries provenance and RAFT fields."""

    instruction: str | None = None
    input: str
    output: str
    metadata: dict[str, Any] = Field(default_factory=dict)
