"""The RAFT sample format (Zhang et al. 2024, "RAFT: Adapting Language Model to Domain Specific
RAG"): a question over a context of oracle and distractor documents, answered by reasoning that
quotes the oracle verbatim between quote markers and ends with `<ANSWER>: ...`.

This module owns that format on both sides: rendering documents, contexts and answers for
synthesis, and parsing quotes and checking grounding for validation.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from guardian.core.schema import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, Chunk, Sample, tagged_answer
from guardian.data.docfacts import doc_section, summary_quote
from guardian.data.fields import callers_line, params_line, returns_line
from guardian.data.templates import module_name

__all__ = [
    "drop_distractors",
    "split_documents",
    "ANSWER_TAG",
    "BEGIN_QUOTE",
    "DEFAULT_INSTRUCTION",
    "END_QUOTE",
    "Doc",
    "OracleSchedule",
    "chunk_document",
    "final_answer",
    "assemble",
    "fallback_cot",
    "index_text",
    "module_document",
    "module_index_text",
    "normalise_ws",
    "plan_pools",
    "question_of",
    "quotes_in",
    "raft_input",
    "raft_output",
    "sample_rng",
    "ungrounded_quotes",
]

DOCS_HEADER = "Documents:"
QUESTION_MARK = "\n\nQuestion: "
DEFAULT_INSTRUCTION = f"Quote the documents that answer the question, then give {ANSWER_TAG}"
_WS = re.compile(r"\s+")


def normalise_ws(text: str) -> str:
    """Text with every whitespace run collapsed to one space and the ends stripped."""
    return _WS.sub(" ", text).strip()


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    at = max(cut.rfind("\n"), cut.rfind(" "))
    return (cut[:at] if at > limit // 2 else cut).rstrip() + " ..."


def chunk_document(
    chunk: Chunk,
    *,
    sections: Sequence[str] = (),
    code: bool = False,
    max_summary_chars: int | None = 240,
    called_by: Sequence[str] = (),
) -> str:
    """A chunk as a compact context document: location, signature, docstring summary, facts.

    The facts are labelled lines a question can be answered from by quoting one: the
    parameter names, the return type, and (`called_by`, see data/facts.py) the callers.

    The summary (first docstring paragraph) is clipped to `max_summary_chars` unless that is
    None (0 leaves it out). `sections` ("returns", "raises") append those docstring sections
    verbatim, and `code` the chunk's code: distractors get the clipped form, the oracle
    what its question quotes.
    """
    docstring = (chunk.docstring or "").strip()
    summary = summary_quote(docstring)
    if max_summary_chars is not None:
        summary = _clip(summary, max_summary_chars) if max_summary_chars > 0 else ""
    location = f"{chunk.path}:{chunk.start_line}-{chunk.end_line}"
    parts = [f"{location} {chunk.kind} {chunk.qualname}", chunk.signature.strip()]
    facts = (params_line(chunk), returns_line(chunk), callers_line(called_by))
    parts += [line for line in facts if line]
    if summary:
        parts.append(summary)
    for name in sections:
        block = doc_section(docstring, "returns" if name == "returns" else "raises")
        if block:
            parts.append(f"{name.capitalize()}: {block}")
    if code:
        parts.append(chunk.code.strip("\n"))
    return "\n".join(parts)


def index_text(chunk: Chunk) -> str:
    """The text retrieval indexes for a chunk: its path, its name (twice) and its code."""
    return f"{chunk.path} {chunk.qualname} {chunk.qualname} {chunk.code[:1500]}"


def module_index_text(path: str, facts: dict[str, str]) -> str:
    """The text retrieval indexes for a file outline: path, module name and signatures."""
    return f"{path} {facts['module']} {facts['outline']}"


def module_document(path: str, facts: dict[str, str]) -> str:
    """A file's outline as a context document: its path, the names it defines (one line to
    quote) and their signatures (`facts` from `module_fields`)."""
    lines = [f"{path} module {module_name(path)}", facts["defines_line"], facts["outline"]]
    return "\n".join(line for line in lines if line)


def raft_input(docs: Sequence[str], question: str) -> str:
    """The sample input: the numbered documents, then the question."""
    listing = "\n\n".join(f"[{i}] {doc}" for i, doc in enumerate(docs, 1)) or "(none)"
    return f"{DOCS_HEADER}\n{listing}{QUESTION_MARK}{question}"


_DOC_START = re.compile(r"\n\n(?=\[\d+\] )")
_DOC_NUMBER = re.compile(r"^\[\d+\] ")


def split_documents(text: str) -> tuple[list[str], str] | None:
    """The documents and question of a RAFT input (`raft_input`'s inverse); None for any
    other text, or one whose documents cannot be told apart unambiguously."""
    if not text.startswith(DOCS_HEADER + "\n"):
        return None
    head, sep, question = text.rpartition(QUESTION_MARK)
    if not sep:
        return None
    listing = head[len(DOCS_HEADER) + 1 :]
    docs = (
        []
        if listing == "(none)"
        else [_DOC_NUMBER.sub("", p, count=1) for p in _DOC_START.split(listing)]
    )
    return (docs, question) if raft_input(docs, question) == text else None


def drop_distractors(sample: Sample, fits: Callable[[Sample], bool]) -> tuple[Sample, int]:
    """The sample with distractor documents removed, last first, until `fits` it; the
    oracle documents always stay. Returns it and how many documents were dropped."""
    if fits(sample):
        return sample, 0
    parsed = split_documents(sample.input)
    if parsed is None:
        return sample, 0
    docs, question = parsed
    oracles = {normalise_ws(str(o)) for o in sample.metadata.get("oracle") or []}
    dropped, current = 0, sample
    for i in reversed(range(len(docs))):
        if normalise_ws(docs[i]) in oracles:
            continue
        del docs[i]
        dropped += 1
        current = sample.model_copy(update={"input": raft_input(docs, question)})
        if fits(current):
            break
    return current, dropped


def question_of(text: str) -> str:
    """The question part of a sample input (the whole input when it carries no documents)."""
    if not text.startswith(DOCS_HEADER):
        return text
    head, sep, tail = text.rpartition(QUESTION_MARK)
    return tail if sep else text


def raft_output(cot: str, answer: str) -> str:
    """The sample output: the quoting reasoning, then the final answer after the tag."""
    return f"{cot.strip()}\n{ANSWER_TAG} {answer.strip()}"


def final_answer(output: str) -> str | None:
    """The text after the last answer tag, or None when there is none (or it is empty)."""
    return tagged_answer(output)


def quotes_in(text: str) -> list[str] | None:
    """The spans between quote markers in `text`; None when the markers are unbalanced."""
    spans: list[str] = []
    rest = text
    while True:
        start = rest.find(BEGIN_QUOTE)
        stray_end = rest.find(END_QUOTE)
        if start < 0:
            return spans if stray_end < 0 else None
        if 0 <= stray_end < start:
            return None
        rest = rest[start + len(BEGIN_QUOTE) :]
        end = rest.find(END_QUOTE)
        if end < 0 or BEGIN_QUOTE in rest[:end]:
            return None
        spans.append(rest[:end])
        rest = rest[end + len(END_QUOTE) :]


def ungrounded_quotes(output: str, oracles: Sequence[str]) -> list[str] | None:
    """Quoted spans of `output` found in none of the oracle texts; None when markers are broken.

    Matching ignores differences in whitespace (line breaks, indentation): a quote must be a
    word-for-word span of an oracle. An empty quote is never grounded.
    """
    spans = quotes_in(output)
    if spans is None:
        return None
    normed = [normalise_ws(o) for o in oracles]
    bad: list[str] = []
    for span in spans:
        text = normalise_ws(span)
        if not text or not any(text in o for o in normed):
            bad.append(span)
    return bad


@dataclass(frozen=True)
class Doc:
    """A context document: its id (a chunk id, or `module:<path>`) and its rendered text."""

    id: str
    text: str


def fallback_cot(oracle: Doc) -> str:
    """Reasoning for a template without `cot`: quote the oracle's first line."""
    return f"The relevant document is {BEGIN_QUOTE}{oracle.text.splitlines()[0]}{END_QUOTE}."


def assemble(
    question: str,
    oracle: Doc,
    candidates: Sequence[Doc],
    *,
    k: int,
    has_oracle: bool,
    max_chars: int,
    rng: random.Random,
) -> tuple[str, list[str]]:
    """The RAFT input for a question, and the ids of the distractors it carries.

    With the oracle the context holds it plus the k nearest candidates, without it the k + 1
    nearest (the document count does not give the oracle away). Distractors are dropped,
    farthest first, until the documents fit in `max_chars` (one always stays when there is no
    oracle); the documents are then shuffled.
    """
    chosen = list(candidates[: k if has_oracle else k + 1])
    keep_min = 0 if has_oracle else 1
    size = (len(oracle.text) if has_oracle else 0) + sum(len(d.text) for d in chosen)
    while size > max_chars and len(chosen) > keep_min:
        size -= len(chosen.pop().text)
    docs = ([oracle] if has_oracle else []) + chosen
    rng.shuffle(docs)
    return raft_input([d.text for d in docs], question), [d.id for d in chosen]


def sample_rng(seed: int, *key: str) -> random.Random:
    """A private RNG for one sample, seeded from the run seed and the sample's identity."""
    digest = hashlib.sha256("\x00".join([str(seed), *key]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class OracleSchedule:
    """Decides which samples keep their oracle so each split hits the fraction P exactly.

    Error diffusion with a random threshold: each draw is random, but per split the count of
    oracle-carrying samples never strays more than one from P times the samples seen.
    """

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self._error: dict[str, float] = defaultdict(float)

    def draw(self, split: str, u: float) -> bool:
        """Whether the next sample of `split` keeps its oracle; `u` is uniform in [0, 1)."""
        target = self.fraction + self._error[split]
        keep = u < target
        self._error[split] = target - (1.0 if keep else 0.0)
        return keep


def _parent(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


def plan_pools(file_chunks: dict[str, int], min_pool: int, max_pool: int) -> dict[str, str]:
    """Group files into retrieval pools: each file's directory, small ones merged upward.

    A directory whose pool holds fewer than `min_pool` chunks joins its parent's pool (deepest
    first); a pool above `max_pool` chunks is cut into runs of whole files in path order.
    Returns file path -> pool key.
    """
    pools: dict[str, list[str]] = defaultdict(list)
    for path in sorted(file_chunks):
        pools[_parent(path)].append(path)

    def depth(d: str) -> int:
        return 0 if not d else d.count("/") + 1

    for level in range(max((depth(d) for d in pools), default=0), 0, -1):
        for d in sorted(x for x in list(pools) if depth(x) == level):
            if sum(file_chunks[f] for f in pools[d]) < min_pool:
                pools[_parent(d)].extend(pools.pop(d))
    assignment: dict[str, str] = {}
    for d, files in pools.items():
        groups: list[list[str]] = [[]]
        size = 0
        for path in sorted(files):
            if groups[-1] and size + file_chunks[path] > max_pool:
                groups.append([])
                size = 0
            groups[-1].append(path)
            size += file_chunks[path]
        for g, group in enumerate(groups):
            key = d if len(groups) == 1 else f"{d}#{g:04d}"
            assignment.update(dict.fromkeys(group, key))
    return assignment
