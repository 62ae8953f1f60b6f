"""Open-book prompts: a repo's chunks and file outlines as documents, searched by a question.

The same documents, index text and RAFT input format the synthesis trains on, so a question
asked with `guardian ask` or by the knowledge probe reaches the model exactly as its training
samples did: the top-k documents for the question, then the question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guardian.core.schema import Chunk, Sample
from guardian.data.facts import callers_of, top_level
from guardian.data.raft import (
    DEFAULT_INSTRUCTION,
    Doc,
    chunk_document,
    index_text,
    module_document,
    module_index_text,
    raft_input,
)
from guardian.data.retrieval import BM25, query_terms, terms
from guardian.data.templates import module_fields

__all__ = ["ContextIndex"]


def _names_path(question: str, path: str) -> bool:
    at = question.find(path)
    end = at + len(path)
    return (
        at >= 0
        and (at == 0 or not question[at - 1].isalnum() and question[at - 1] not in "/._")
        and (end == len(question) or not (question[end].isalnum() or question[end] in "/_"))
    )


class ContextIndex:
    """BM25 over every chunk document and file outline of one commit, queried with free text.

    `max_summary_chars` and `max_members` must match the synthesize params the model was
    trained with, so its documents look the same as in training; `max_chars` and
    `instruction` are the defaults of `prompt`. `for_synthesis` takes all four from them.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        *,
        max_summary_chars: int = 240,
        max_members: int = 12,
        max_chars: int = 2400,
        instruction: str = DEFAULT_INSTRUCTION,
    ) -> None:
        self.max_chars, self.instruction = max_chars, instruction
        callers = callers_of(chunks)
        self.docs: list[Doc] = []
        texts: list[str] = []
        for c in sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname, c.id)):
            text = chunk_document(
                c, max_summary_chars=max_summary_chars, called_by=callers.get(c.id, ())
            )
            self.docs.append(Doc(c.id, text))
            texts.append(index_text(c))
        for path, members in top_level(chunks).items():
            facts = module_fields(path, members, max_members)
            if facts["outline"]:
                self.docs.append(Doc(f"module:{path}", module_document(path, facts)))
                texts.append(module_index_text(path, facts))
        self.index = BM25([terms(t) for t in texts])
        self._outline_of = {
            d.id.removeprefix("module:"): i
            for i, d in enumerate(self.docs)
            if d.id.startswith("module:")
        }

    @classmethod
    def for_synthesis(cls, chunks: Sequence[Chunk], synth: Mapping[str, Any]) -> ContextIndex:
        """The index with the documents and context size of these synthesize params (a params
        dump or a dataset card's `synthesis` block); a missing key takes the step's default."""
        return cls(
            chunks,
            max_summary_chars=int(synth.get("max_summary_chars", 240)),
            max_members=int(synth.get("max_members", 12)),
            max_chars=int(synth.get("max_context_chars", 2400)),
            instruction=str(synth.get("instruction") or DEFAULT_INSTRUCTION),
        )

    def search(self, question: str, k: int) -> list[Doc]:
        """The k documents best matching the question, best first.

        A question that names a file by its path gets that file's outline first: BM25 would
        rank the file's many units, which all carry its path, above the one outline.
        """
        named = [i for path, i in self._outline_of.items() if _names_path(question, path)]
        ranked = self.index.search(query_terms(question), k + len(named))
        order = named + [i for i in ranked if i not in named]
        return [self.docs[i] for i in order[:k]]

    def prompt(
        self,
        question: str,
        *,
        k: int = 3,
        max_chars: int | None = None,
        instruction: str | None = None,
    ) -> tuple[Sample, list[str]]:
        """The RAFT-format sample for a question, and the ids of the documents it carries.

        Lower-ranked documents are dropped until the context fits `max_chars` (the best one
        always stays), as the synthesis does with distractors.
        """
        max_chars = self.max_chars if max_chars is None else max_chars
        instruction = self.instruction if instruction is None else instruction
        docs = self.search(question, k)
        while len(docs) > 1 and sum(len(d.text) for d in docs) > max_chars:
            docs.pop()
        sample = Sample(
            instruction=instruction,
            input=raft_input([d.text for d in docs], question),
            output="",
            metadata={"doc_ids": [d.id for d in docs]},
        )
        return sample, [d.id for d in docs]
