"""The synthesis engine: the chunks of one retrieval pool in, plain or RAFT samples out.

Used by the synthesize step, which streams pools through it (`scan_chunks` indexes the chunks
file, `load_chunks` reads one pool back).
Template answers and teacher answers go through the same grounding check before they become
samples, and every sample carries its provenance and RAFT fields in `metadata`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from guardian.core.jsonl import first_error
from guardian.core.schema import Chunk, Sample
from guardian.data.card import SPLITS
from guardian.data.raft import (
    Doc,
    OracleSchedule,
    assemble,
    chunk_document,
    fallback_cot,
    final_answer,
    module_document,
    quotes_in,
    raft_output,
    sample_rng,
    ungrounded_quotes,
)
from guardian.data.retrieval import Neighbours
from guardian.data.templates import Rendered, Template, chunk_fields, fill, module_fields
from guardian.errors import DataError

if TYPE_CHECKING:
    from guardian.data.teacher import Teacher

__all__ = ["PoolSynth", "SynthOptions", "load_chunks", "scan_chunks"]

_RANK = {"train": 0, "val": 1, "test": 2}
_SECTIONS = {
    "returns": "returns",
    "returns_quote": "returns",
    "raises": "raises",
    "raises_quote": "raises",
}


class SynthOptions(Protocol):
    """The synthesis settings the engine reads (the synthesize step's params provide them)."""

    seed: int
    max_code_lines: int
    min_docstring_chars: int
    raft: bool
    distractors: int
    oracle_fraction: float
    max_context_chars: int
    max_summary_chars: int
    max_members: int
    instruction: str


def scan_chunks(path: Path) -> dict[str, list[tuple[int, int]]]:
    """First pass: file path -> [(byte offset, line number)] of its chunks in the JSONL file."""
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    with handle:
        offset = 0
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise DataError(f"{path}:{lineno}: invalid JSON ({exc})") from None
                if not isinstance(record, dict):
                    kind = type(record).__name__
                    raise DataError(f"{path}:{lineno}: expected a JSON object (got {kind})")
                if "path" not in record:
                    raise DataError(f"{path}:{lineno}: path: Field required")
                file_path = record["path"]
                if not isinstance(file_path, str):
                    raise DataError(f"{path}:{lineno}: path: Input should be a valid string")
                where[file_path].append((offset, lineno))
            offset += len(line)
    return where


def load_chunks(path: Path, spots: list[tuple[int, int]]) -> list[Chunk]:
    """Read the chunks at the given (offset, line) spots, sorted by file position."""
    chunks: list[Chunk] = []
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:
        for offset, lineno in sorted(spots):
            handle.seek(offset)
            try:
                chunk = Chunk.model_validate_json(handle.readline())
            except ValidationError as exc:
                raise DataError(f"{path}:{lineno}: {first_error(exc)}") from None
            if chunk.id in first_line:
                raise DataError(
                    f"{path}:{lineno}: id: duplicate chunk id {chunk.id} "
                    f"(first at line {first_line[chunk.id]})"
                )
            first_line[chunk.id] = lineno
            chunks.append(chunk)
    return sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname, c.id))


class PoolSynth:
    """Turns the chunks of one retrieval pool at a time into samples, plain or RAFT.

    Keeps running statistics for the card; the oracle schedule runs across pools, so the
    oracle fraction holds per split over the whole dataset.
    """

    def __init__(
        self,
        templates: list[Template],
        params: SynthOptions,
        assignment: dict[str, str],
        teacher: Teacher | None,
    ) -> None:
        self.p = params
        self.assignment = assignment
        self.teacher = teacher
        chunk_tpls = [t for t in templates if t.scope == "chunk"]
        self.by_kind: dict[str, tuple[list[Template], frozenset[str]]] = {}
        for kind in ("function", "method", "class"):
            tpls = [t for t in chunk_tpls if kind in t.kinds]
            self.by_kind[kind] = (tpls, frozenset().union(*(t.needs() for t in tpls)))
        self.module_tpls = [t for t in templates if t.scope == "module"]
        self.schedule = OracleSchedule(params.oracle_fraction)
        self.stats: Counter[str] = Counter()
        self.teacher_stats: Counter[str] = Counter()
        self.by_type: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.oracle: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.n_distractors: Counter[int] = Counter()
        self.per_documented: list[int] = []

    @property
    def teacher_types(self) -> bool:
        """Whether any teacher sample was made."""
        return any(self.by_type[s]["teacher"] for s in SPLITS)

    def samples(self, chunks: list[Chunk]) -> Iterator[Sample]:
        """Every sample of one pool's chunks (sorted by file position), file by file."""
        files: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            files.setdefault(chunk.path, []).append(chunk)
        modules: dict[str, dict[str, str]] = {}
        for path, file_chunks in files.items() if self.module_tpls else ():
            facts = module_fields(path, file_chunks, self.p.max_members)
            if facts["outline"]:
                modules[path] = facts
        near = mod_near = None
        if self.p.raft:
            near = Neighbours(
                [f"{c.qualname} {c.qualname} {c.code[:1500]}" for c in chunks],
                [_RANK[self.assignment[c.path]] for c in chunks],
                [(f"{c.path}:{c.qualname}", c.content_hash) for c in chunks],
            )
            paths = list(modules)
            mod_near = Neighbours(
                [f"{modules[x]['outline']} {x}" for x in paths],
                [_RANK[self.assignment[x]] for x in paths],
                [(x,) for x in paths],
            )
        position = {path: pos for pos, path in enumerate(modules)}
        i = 0
        for path, file_chunks in files.items():
            split = self.assignment[path]
            made: list[Sample] = []
            for chunk in file_chunks:
                made += self._chunk(chunk, i, chunks, near, split)
                i += 1
            if path in modules:
                commit = file_chunks[0].commit
                made += self._module(path, position[path], modules, mod_near, split, commit)
            for sample in made:
                self.by_type[split][sample.metadata["question_type"]] += 1
                yield sample

    def _emit(
        self, meta: dict[str, Any], filled: Rendered, oracle: Doc | None, cands: list[Doc]
    ) -> Sample | None:
        """A plain sample when `oracle` is None, else the RAFT sample (None if ungrounded)."""
        if oracle is None:
            return Sample(
                instruction=filled.instruction,
                input=filled.question,
                output=filled.output,
                metadata=meta,
            )
        question = filled.question
        if filled.instruction:
            question = f"{filled.instruction}\n\n{question}"
        output = raft_output(filled.cot or fallback_cot(oracle), filled.answer)
        return self._raft(meta, question, output, oracle, cands)

    def _raft(
        self, meta: dict[str, Any], question: str, output: str, oracle: Doc, cands: list[Doc]
    ) -> Sample | None:
        bad = ungrounded_quotes(output, [oracle.text])
        if bad is None or bad:
            self.stats["ungrounded"] += 1
            return None
        rng = sample_rng(self.p.seed, oracle.id, meta["question_type"], question)
        has = self.schedule.draw(meta["split"], rng.random())
        text, ids = assemble(
            question,
            oracle,
            cands,
            k=self.p.distractors,
            has_oracle=has,
            max_chars=self.p.max_context_chars,
            rng=rng,
        )
        self.oracle[meta["split"]]["with" if has else "without"] += 1
        self.n_distractors[len(ids)] += 1
        meta.update(
            oracle_ids=[oracle.id], distractor_ids=ids, has_oracle=has, oracle=[oracle.text]
        )
        return Sample(instruction=self.p.instruction, input=text, output=output, metadata=meta)

    def _chunk(
        self, chunk: Chunk, i: int, chunks: list[Chunk], near: Neighbours | None, split: str
    ) -> list[Sample]:
        p = self.p
        tpls, needs = self.by_kind[chunk.kind]
        facts = chunk_fields(chunk, needs, min_docstring_chars=p.min_docstring_chars)
        n_lines = len(chunk.code.strip("\n").splitlines())
        cands = [
            Doc(chunks[j].id, chunk_document(chunks[j], max_summary_chars=p.max_summary_chars))
            for j in (near.of(i, p.distractors + 1) if near is not None else [])
        ]
        meta = {"chunk_id": chunk.id, "path": chunk.path, "commit": chunk.commit}
        meta |= {"qualname": chunk.qualname, "split": split}
        out: list[Sample] = []
        for tpl in tpls:
            filled = fill(tpl, facts, code_lines=n_lines, max_code_lines=p.max_code_lines)
            if filled is None:
                continue
            oracle = None
            if near is not None:
                sections = sorted({_SECTIONS[f] for f in tpl.needs() if f in _SECTIONS})
                text = chunk_document(
                    chunk, sections=sections, code=tpl.context_code, max_summary_chars=None
                )
                oracle = Doc(chunk.id, text)
            sample = self._emit({**meta, "question_type": tpl.question_type}, filled, oracle, cands)
            if sample is not None:
                out.append(sample)
        if self.teacher is not None and chunk.docstring and not self.teacher.exhausted:
            out += self._teach(chunk, {**meta, "question_type": "teacher"}, cands, near is not None)
        documented = len((chunk.docstring or "").strip()) >= max(1, p.min_docstring_chars)
        if documented and chunk.kind != "class":
            self.per_documented.append(len(out))
        return out

    def _teach(
        self, chunk: Chunk, meta: dict[str, Any], cands: list[Doc], raft: bool
    ) -> list[Sample]:
        """Teacher pairs for a chunk; an answer must quote the oracle and end in an answer tag."""
        assert self.teacher is not None
        text = chunk_document(chunk, sections=("raises", "returns"), max_summary_chars=None)
        oracle = Doc(chunk.id, text)
        out: list[Sample] = []
        for pair in self.teacher.ask(oracle.text, chunk.qualname):
            self.teacher_stats["pairs"] += 1
            answer = final_answer(pair.answer)
            bad = ungrounded_quotes(pair.answer, [oracle.text])
            if not (pair.question and answer and quotes_in(pair.answer) and bad == []):
                self.teacher_stats["rejected"] += 1
                continue
            if not raft:
                out.append(Sample(input=pair.question, output=answer, metadata=dict(meta)))
                continue
            sample = self._raft(dict(meta), pair.question, pair.answer, oracle, cands)
            if sample is not None:
                out.append(sample)
        return out

    def _module(
        self,
        path: str,
        pos: int,
        modules: dict[str, dict[str, str]],
        near: Neighbours | None,
        split: str,
        commit: str,
    ) -> list[Sample]:
        facts = modules[path]
        names = list(modules)
        ident = f"module:{path}"
        meta = {"chunk_id": ident, "path": path, "commit": commit, "qualname": facts["module"]}
        meta["split"] = split
        oracle = Doc(ident, module_document(path, facts["outline"])) if near is not None else None
        cands = [
            Doc(f"module:{names[j]}", module_document(names[j], modules[names[j]]["outline"]))
            for j in (near.of(pos, self.p.distractors + 1) if near is not None else [])
        ]
        out: list[Sample] = []
        for tpl in self.module_tpls:
            filled = fill(tpl, facts)
            if filled is None:
                continue
            sample = self._emit({**meta, "question_type": tpl.question_type}, filled, oracle, cands)
            if sample is not None:
                out.append(sample)
        return out

    def raft_summary(self) -> dict[str, Any]:
        """Oracle fraction per split and overall, and how many distractors samples carry."""
        rows: dict[str, Any] = {}
        total: Counter[str] = Counter()
        for split in SPLITS:
            c = self.oracle[split]
            total.update(c)
            n = c["with"] + c["without"]
            rows[split] = round(c["with"] / n, 4) if n else None
        n = total["with"] + total["without"]
        return {
            "oracle_fraction": round(total["with"] / n, 4) if n else None,
            "oracle_fraction_by_split": rows,
            "target_oracle_fraction": self.p.oracle_fraction,
            "distractors": {str(k): v for k, v in sorted(self.n_distractors.items())},
        }
