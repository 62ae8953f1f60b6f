"""The synthesis engine: the chunks of one retrieval pool in, plain or RAFT samples out.

Used by the synthesize step, which streams pools through it (guardian/data/chunkfile.py
reads them).
Template answers and teacher answers go through the same grounding check before they become
samples, and every sample carries its provenance and RAFT fields in `metadata`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from guardian.core.schema import Chunk, Sample
from guardian.data.card import SPLITS, oracle_tally
from guardian.data.facts import callers_of, is_public
from guardian.data.raft import (
    Doc,
    OracleSchedule,
    assemble,
    chunk_document,
    fallback_cot,
    final_answer,
    index_text,
    module_document,
    module_index_text,
    quotes_in,
    raft_output,
    sample_rng,
    ungrounded_quotes,
)
from guardian.data.retrieval import Neighbours
from guardian.data.templates import (
    DOC_FIELDS,
    Rendered,
    Template,
    chunk_fields,
    fill_phrasings,
    module_fields,
)

if TYPE_CHECKING:
    from guardian.data.teacher import Teacher

__all__ = ["PoolSynth", "SynthOptions"]

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
    val_fraction: float
    max_code_lines: int
    min_docstring_chars: int
    raft: bool
    distractors: int
    oracle_fraction: float
    max_context_chars: int
    max_summary_chars: int
    max_members: int
    instruction: str
    max_repeat: int | None
    closed_book: bool
    closed_book_wordings: int | None


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
        self.coverage: Counter[str] = Counter()

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
        self.callers = callers_of(chunks)
        self.docs: list[Doc] = []
        near = None
        if self.p.raft:
            texts: list[str] = []
            ranks: list[int] = []
            groups: list[tuple[str, ...]] = []
            for c in chunks:
                called_by = self.callers.get(c.id, ())
                doc = chunk_document(
                    c, max_summary_chars=self.p.max_summary_chars, called_by=called_by
                )
                self.docs.append(Doc(c.id, doc))
                texts.append(index_text(c))
                ranks.append(_RANK[self.assignment[c.path]])
                groups.append((f"{c.path}:{c.qualname}", c.content_hash))
            for x, facts in modules.items():
                self.docs.append(Doc(f"module:{x}", module_document(x, facts)))
                texts.append(module_index_text(x, facts))
                ranks.append(_RANK[self.assignment[x]])
                groups.append((f"module:{x}",))
            near = Neighbours(texts, ranks, groups)
        position = {path: len(chunks) + pos for pos, path in enumerate(modules)}
        self.same_file: dict[int, list[int]] = defaultdict(list)
        for j, c in enumerate(chunks):
            if c.path in position:
                self.same_file[j].append(position[c.path])
                self.same_file[position[c.path]].append(j)
        i = 0
        for path, file_chunks in files.items():
            split = self.assignment[path]
            made: list[Sample] = []
            for chunk in file_chunks:
                made += self._chunk(chunk, i, chunks, near, split)
                i += 1
            if path in modules:
                commit = file_chunks[0].commit
                made += self._module(path, position[path], modules, near, split, commit)
            for sample in made:
                self.by_type[sample.metadata["split"]][sample.metadata["question_type"]] += 1
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

    def _worded(
        self, tpl: Template, key: str, phrasings: list[Rendered]
    ) -> list[tuple[Rendered, bool]]:
        """The phrasings to emit for one unit, each with whether it is the plain copy.

        `repeat` distinct phrasings are drawn with the seed; a `closed_book` template under
        RAFT also gets plain samples, so the fact is learned without context: those drawn
        wordings first, then more up to `closed_book_wordings` (None: every wording; plain
        copies are short, and a fact learned in many wordings is recalled under new ones).
        """
        rng = sample_rng(self.p.seed, key, tpl.question_type, "phrasing")
        order = rng.sample(range(len(phrasings)), len(phrasings))
        repeat = min(tpl.repeat, self.p.max_repeat or tpl.repeat, len(phrasings))
        out = [(phrasings[n], False) for n in sorted(order[:repeat])]
        if self.p.raft and tpl.closed_book and self.p.closed_book:
            plain = self.p.closed_book_wordings or len(phrasings)
            out += [(phrasings[n], True) for n in sorted(order[: max(repeat, plain)])]
        return out

    def _phrased(
        self,
        tpl: Template,
        key: str,
        phrasings: list[Rendered],
        meta: dict[str, Any],
        oracle: Doc | None,
        near: Neighbours | None,
        i: int,
    ) -> list[Sample]:
        """The samples of one template for one unit or file: each drawn wording, RAFT (with
        distractors for its question) or its plain closed-book copy."""
        out: list[Sample] = []
        worded = self._worded(tpl, key, phrasings)
        held = self._held_out(tpl, key, meta["split"], [f.question for f, _ in worded])
        for filled, plain in worded:
            qmeta = {**meta, "question_type": tpl.question_type}
            if filled.question in held:
                qmeta["split"] = "val"
            if plain:
                qmeta["closed_book"] = True
                sample = self._emit(qmeta, filled, None, [])
            else:
                sample = self._emit(
                    qmeta, filled, oracle, self._candidates(near, filled.question, i)
                )
            if sample is not None:
                out.append(sample)
        return out

    def _held_out(self, tpl: Template, key: str, split: str, questions: list[str]) -> set[str]:
        """The wordings of a train-file fact kept for validation (both their copies).

        Val is a seeded share of wordings, never a whole fact: a fact asked in one wording
        only stays in train, and at least one wording of each fact is trained on. So the val
        loss measures recall of trained facts under wordings not trained on, and a small repo
        loses no file to validation.
        """
        wordings = list(dict.fromkeys(questions))
        if split != "train" or self.p.val_fraction <= 0 or len(wordings) < 2:
            return set()
        held = {
            q
            for q in wordings
            if sample_rng(self.p.seed, "val", key, tpl.question_type, q).random()
            < self.p.val_fraction
        }
        if held == set(wordings):
            held.discard(wordings[0])
        return held

    def _candidates(self, near: Neighbours | None, question: str, i: int) -> list[Doc]:
        """The question's best BM25 matches, minus what states the answer (own file/units)."""
        if near is None:
            return []
        k = self.p.distractors + 1
        return [self.docs[j] for j in near.for_question(question, i, k, self.same_file[i])]

    def _chunk(
        self, chunk: Chunk, i: int, chunks: list[Chunk], near: Neighbours | None, split: str
    ) -> list[Sample]:
        p = self.p
        tpls, needs = self.by_kind[chunk.kind]
        called_by = self.callers.get(chunk.id, [])
        facts = chunk_fields(
            chunk, needs, min_docstring_chars=p.min_docstring_chars, callers=called_by
        )
        n_lines = len(chunk.code.strip("\n").splitlines())
        meta: dict[str, Any] = {"chunk_id": chunk.id, "path": chunk.path, "commit": chunk.commit}
        meta |= {"qualname": chunk.qualname, "split": split}
        out: list[Sample] = []
        for tpl in tpls:
            phrasings = fill_phrasings(
                tpl, facts, code_lines=n_lines, max_code_lines=p.max_code_lines
            )
            if not phrasings:
                continue
            oracle = None
            if near is not None:
                sections = sorted({_SECTIONS[f] for f in tpl.needs() if f in _SECTIONS})
                text = chunk_document(
                    chunk,
                    sections=sections,
                    code=tpl.context_code,
                    # a docstring question quotes it whole; others see what retrieval shows
                    max_summary_chars=None if tpl.needs() & DOC_FIELDS else p.max_summary_chars,
                    called_by=called_by,
                )
                oracle = Doc(chunk.id, text)
            out += self._phrased(tpl, chunk.id, phrasings, meta, oracle, near, i)
        if self.teacher is not None and chunk.docstring and not self.teacher.exhausted:
            cands = self._candidates(near, chunk.qualname, i)
            out += self._teach(chunk, {**meta, "question_type": "teacher"}, cands, near is not None)
        if is_public(chunk):
            self.coverage["public_units"] += 1
            self.coverage["covered"] += bool(out)
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
        ident = f"module:{path}"
        meta: dict[str, Any] = {"chunk_id": ident, "path": path, "commit": commit}
        meta |= {"qualname": facts["module"], "split": split}
        oracle = Doc(ident, module_document(path, facts)) if near is not None else None
        out: list[Sample] = []
        for tpl in self.module_tpls:
            phrasings = fill_phrasings(tpl, facts)
            out += self._phrased(tpl, ident, phrasings, meta, oracle, near, pos)
        return out

    def raft_summary(self) -> dict[str, Any]:
        """Oracle fraction per split and overall, and how many distractors samples carry."""
        tally = oracle_tally(self.oracle)
        return {
            "oracle_fraction": tally["all"]["fraction"],
            "oracle_fraction_by_split": {s: tally[s]["fraction"] for s in SPLITS},
            "target_oracle_fraction": self.p.oracle_fraction,
            "distractors": {str(k): v for k, v in sorted(self.n_distractors.items())},
        }
