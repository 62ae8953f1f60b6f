"""Open-book prompts: a repo's chunks and file outlines as documents, searched by a question.

The same documents, index text and RAFT input format the synthesis trains on, so a question
asked with `guardian ask` or by the knowledge probe reaches the model exactly as its training
samples did: the top-k documents for the question, then the question.

Which documents: the outline of a file the question names by path, then the definitions of
the symbols it names (an identifier index beside BM25), then BM25's best for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from itertools import zip_longest
from typing import Any

import numpy as np

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
from guardian.data.retrieval import BM25, NameIndex, mentions, query_terms, terms
from guardian.data.templates import module_fields, module_name

__all__ = ["ContextIndex"]


def _names_path(question: str, path: str) -> bool:
    at = question.find(path)
    end = at + len(path)
    return (
        at >= 0
        and (at == 0 or not question[at - 1].isalnum() and question[at - 1] not in "/._")
        and (end == len(question) or not (question[end].isalnum() or question[end] in "/_"))
    )


def _round_robin(groups: Sequence[Sequence[int]]) -> list[int]:
    """The first of every group, then the second of every group, ..., each document once."""
    out: dict[int, None] = {}
    for row in zip_longest(*groups):
        out.update((i, None) for i in row if i is not None)
    return list(out)


class ContextIndex:
    """Every chunk document and file outline of one commit, queried with free text: by the
    paths and symbol names a question mentions, then by BM25.

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
        self._paths: list[str] = []
        self._qualnames: list[str] = []
        texts: list[str] = []
        symbols: list[tuple[str, int]] = []
        for c in sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname, c.id)):
            text = chunk_document(
                c, max_summary_chars=max_summary_chars, called_by=callers.get(c.id, ())
            )
            module = module_name(c.path)
            full = f"{module}.{c.qualname}" if module else c.qualname
            symbols.append((full, len(self.docs)))
            self.docs.append(Doc(c.id, text))
            self._paths.append(c.path)
            self._qualnames.append(c.qualname)
            texts.append(index_text(c))
        modules: list[tuple[str, int]] = []
        for path, members in top_level(chunks).items():
            facts = module_fields(path, members, max_members)
            if facts["outline"]:
                modules.append((facts["module"], len(self.docs)))
                self.docs.append(Doc(f"module:{path}", module_document(path, facts)))
                self._paths.append(path)
                self._qualnames.append("")
                texts.append(module_index_text(path, facts))
        self.index = BM25([terms(t) for t in texts])
        self._symbols, self._modules = NameIndex(symbols), NameIndex(modules)
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
        rank the file's many units, which all carry its path, above the one outline. Then
        come the definitions of the symbols it names (`_definitions`), then BM25's ranking.
        """
        query = query_terms(question)
        paths = {path for path in self._outline_of if _names_path(question, path)}
        named = [self._outline_of[path] for path in sorted(paths)]
        defined = self._definitions(question, self.index.scores_for(query), paths, k)
        head = named + [i for i in defined if i not in named]
        ranked = self.index.search(query, k + len(head))
        order = head + [i for i in ranked if i not in head]
        return [self.docs[i] for i in order[:k]]

    def _definitions(self, question: str, scores: np.ndarray, paths: Set[str], k: int) -> list[int]:
        """Up to k documents per name defining the names a question mentions, taken in turns.

        A name written as code brings every unit it names (up to k, see `_rank`). Plain words
        (`cancel`) count only when no code name resolves, and bring their best unit: English
        words that happen to name many methods must not crowd out BM25.
        """
        found = mentions(question)
        strong = [m.name for m in found if m.strong]
        ranked = [self._rank(n, self._resolve(n), scores, paths, k) for n in strong]
        if not any(ranked):
            plain = [m.name for m in found if not m.strong]
            ranked = [self._rank("", self._symbols.lookup(n), scores, paths, 1) for n in plain]
        return _round_robin(ranked)

    def _rank(
        self, name: str, docs: list[int], scores: np.ndarray, paths: Set[str], k: int
    ) -> list[int]:
        """The best k of a name's documents: those in a file the question names; then those
        the name spells out whole (`cancel` is the function `cancel` before the method
        `Order.cancel`; a plain word, passed as "", spells out none); then by BM25 `scores`.
        A unit defined several times in one file (overloads) ranks by its best score and
        lists its last definition, the one in force, first."""
        best: dict[tuple[str, str], float] = {}
        for i in docs:
            unit = (self._paths[i], self._qualnames[i])
            best[unit] = max(best.get(unit, -np.inf), float(scores[i]))

        def key(i: int) -> tuple[bool, bool, float, tuple[str, str], int]:
            path, qualname = self._paths[i], self._qualnames[i]
            whole = not qualname or name == qualname or name.endswith("." + qualname)
            return (path not in paths, not whole, -best[path, qualname], (path, qualname), -i)

        return sorted(docs, key=key)[:k]

    def _resolve(self, name: str) -> list[int]:
        """The symbols with this (qualified) name, else the outline of this module; for a
        dotted name that is neither, the definitions of its last part (`obj.method`) and of
        its longest known prefix (`Order.missing` -> the class `Order`)."""
        found = self._symbols.lookup(name) or self._modules.lookup(name)
        if found or "." not in name:
            return found
        parts = name.split(".")
        found = self._symbols.lookup(parts[-1])
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:cut])
            head = self._symbols.lookup(prefix) or self._modules.lookup(prefix)
            if head:
                return found + [i for i in head if i not in found]
        return found

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
