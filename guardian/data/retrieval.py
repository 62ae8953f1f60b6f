"""Near-neighbour search over code text: BM25 for hard RAFT distractors, MinHash for near-dups.

Both are deterministic (no process-salted `hash()`), numpy-backed and bounded: BM25 indexes one
candidate pool at a time, and the MinHash index keeps a few integers per kept sample.

Beside BM25, for questions: the code names a question mentions (`mentions`) and an exact
index from dotted names to the documents defining them (`NameIndex`).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BM25",
    "Mention",
    "NameIndex",
    "NearDupIndex",
    "Neighbours",
    "mentions",
    "query_terms",
    "shingles",
    "terms",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "self cls the an and or of to in is it for on be as by if not none true false def class "
    "return returns this that with from import are was can any all str int bool".split()
)

# Words every question uses; dropped from queries so the symbol names decide the ranking.
QUESTION_WORDS = frozenset(
    "what which where who whom how does do did why file files defined define defines "
    "function functions method methods class classes module modules repository codebase "
    "code take takes accept accepts give gives call calls called use uses used me tell "
    "about please there here its their".split()
)


def terms(text: str) -> list[str]:
    """Lower-cased identifier terms of a text, plus the parts of snake_case and CamelCase names."""
    out: list[str] = []
    for ident in _IDENT.findall(text):
        low = ident.lower()
        if len(low) > 1 and low not in STOPWORDS:
            out.append(low)
        parts = [p.lower() for chunk in ident.split("_") for p in _CAMEL.split(chunk) if p]
        if len(parts) > 1:
            out.extend(p for p in parts if len(p) > 1 and p not in STOPWORDS)
    return out


def query_terms(text: str) -> list[str]:
    """The terms of a free-text question, without the words every question uses."""
    return [t for t in terms(text) if t not in QUESTION_WORDS]


_TICKED = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# A bare dotted name, not part of a path (`pkg/mod.py`) and maybe called: `name(`.
_BARE = re.compile(r"(?<![\w/.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?![\w/])(\s*\()?")
_FILE_SUFFIXES = frozenset(
    "py pyi js jsx mjs ts tsx go md rst txt toml cfg ini json yaml yml".split()
)
_RECEIVERS = ("self.", "cls.", "this.")
_SENTENCE = re.compile(r"(?:^|[.?!:;])\s*")


@dataclass(frozen=True)
class Mention:
    """A name a question mentions, dotted, without call parentheses or a `self.` receiver.

    `strong` when it is written as code: in backticks, or with a dot, underscore, digit,
    capital letter or call parentheses. A plain lower-case word (`cancel`) is weak.
    """

    name: str
    strong: bool


def _clean(name: str) -> str:
    while name.startswith(_RECEIVERS):
        name = name.split(".", 1)[1]
    return "" if "." in name and name.rsplit(".", 1)[1].lower() in _FILE_SUFFIXES else name


def mentions(question: str) -> list[Mention]:
    """The identifier-like names of a question in the order it mentions them, each once.

    File names (`setup.py`) and paths are not names: the path rule of the caller owns them.
    Left out too: bare single letters (`I`), a plain word opening a sentence (`List the
    ...`, `What ...` — a class `List` must be written as code there) and weak words every
    question uses (`what`, `function`).
    """
    found: list[tuple[int, str, bool]] = []
    for m in _TICKED.finditer(question):
        head = m.group(1).split("(", 1)[0].strip()
        if _DOTTED.fullmatch(head):
            found.append((m.start(), _clean(head), True))
    rest = _TICKED.sub(lambda m: " " * len(m.group()), question)
    openers = {m.end() for m in _SENTENCE.finditer(rest)}
    for m in _BARE.finditer(rest):
        raw, name = m.group(1), _clean(m.group(1))
        plain = m.group(2) is None and raw.isalpha()
        if plain and raw.istitle() and m.start() in openers:
            continue
        weak = plain and raw.islower()
        short = len(name) < (3 if weak else 2)
        if short or weak and (name in STOPWORDS or name in QUESTION_WORDS):
            continue
        found.append((m.start(), name, not weak))
    strong: dict[str, bool] = {}
    for _at, name, is_strong in sorted(found):
        if name:
            strong[name] = strong.get(name, False) or is_strong
    return [Mention(name, is_strong) for name, is_strong in strong.items()]


class NameIndex:
    """Dotted names -> the documents that define them, in the order they were added.

    Every dot-suffix of a definition's full name is a key: `pkg.mod.Cls.meth` is found as
    `meth`, `Cls.meth`, `mod.Cls.meth` and itself, so a short, a qualified and a
    module-qualified name reach the same definition, and a shared short name reaches all.
    """

    def __init__(self, entries: Iterable[tuple[str, int]]) -> None:
        self._docs: dict[str, list[int]] = {}
        for full, doc in entries:
            parts = full.split(".")
            for i in range(len(parts)):
                self._docs.setdefault(".".join(parts[i:]), []).append(doc)

    def lookup(self, name: str) -> list[int]:
        """The documents defining `name` (any dot-suffix of a full name); [] when none do."""
        return list(self._docs.get(name, ()))


class BM25:
    """Okapi BM25 over a fixed list of documents (term lists), queried by document index.

    Postings are numpy arrays per term with the BM25 weight precomputed, so one query costs
    one dense add per query term plus a partition over the pool. Ties are broken by distance
    in index order from the query document, then by index: nearby code wins, deterministically.
    """

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.n = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        avg = float(lengths.mean()) if self.n and lengths.sum() else 1.0
        vocab: dict[str, int] = {}
        self._vocab = vocab
        rows: dict[int, list[tuple[int, int]]] = {}
        self._doc_terms: list[np.ndarray] = []
        for i, doc in enumerate(docs):
            counts = Counter(doc)
            ids = []
            for term, tf in sorted(counts.items()):
                tid = vocab.setdefault(term, len(vocab))
                rows.setdefault(tid, []).append((i, tf))
                ids.append(tid)
            self._doc_terms.append(np.array(ids, dtype=np.int64))
        self._postings: list[tuple[np.ndarray, np.ndarray]] = []
        for tid in range(len(vocab)):
            entries = rows[tid]
            idx = np.array([e[0] for e in entries], dtype=np.int64)
            freq = np.array([e[1] for e in entries], dtype=np.float64)
            df = len(entries)
            idf = math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))
            norm = k1 * (1.0 - b + b * lengths[idx] / avg)
            self._postings.append((idx, idf * freq * (k1 + 1.0) / (freq + norm)))

    def scores(self, query: int) -> np.ndarray:
        """BM25 score of every document against document `query`'s terms."""
        out = np.zeros(self.n, dtype=np.float64)
        for tid in self._doc_terms[query]:
            idx, weight = self._postings[int(tid)]
            out[idx] += weight
        return out

    def scores_for(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document against a list of query terms (unknown ones ignored)."""
        out = np.zeros(self.n, dtype=np.float64)
        for term in sorted(set(query)):
            tid = self._vocab.get(term)
            if tid is not None:
                idx, weight = self._postings[tid]
                out[idx] += weight
        return out

    def search(self, query: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[int]:
        """Up to k documents best matching the query terms, best first (ties by index)."""
        if k <= 0 or self.n == 0:
            return []
        return self._top(self.scores_for(query), k, -1, allowed, ())

    def nearest(
        self, query: int, k: int, allowed: np.ndarray | None = None, exclude: Iterable[int] = ()
    ) -> list[int]:
        """Up to k documents most similar to `query` (never itself, `exclude` or not `allowed`)."""
        if k <= 0 or self.n == 0:
            return []
        return self._top(self.scores(query), k, query, allowed, exclude)

    def _top(
        self,
        score: np.ndarray,
        k: int,
        query: int,
        allowed: np.ndarray | None,
        exclude: Iterable[int],
    ) -> list[int]:
        """The k best-scoring open documents; ties go to the one nearest `query`, then index."""
        banned = np.zeros(self.n, dtype=bool) if allowed is None else ~allowed
        if query >= 0:
            banned[query] = True
        for i in exclude:
            banned[i] = True
        score[banned] = -np.inf
        open_count = int((~banned).sum())
        k = min(k, open_count)
        if k == 0:
            return []
        threshold = np.partition(score, self.n - k)[self.n - k]
        cand = np.flatnonzero(score >= threshold)
        distance = np.abs(cand - query) if query >= 0 else np.zeros_like(cand)
        order = np.lexsort((cand, distance, -score[cand]))
        return [int(i) for i in cand[order[:k]]]


class Neighbours:
    """BM25 neighbours within one pool, with a visibility rule and exclusion groups.

    Each item has a rank; a query sees only items of its own rank or lower (train 0 < val 1 <
    test 2, so held-out code never lands in a training context). Items sharing any group key
    (the same unit seen twice, identical code) never neighbour each other.
    """

    def __init__(
        self, texts: Sequence[str], ranks: Sequence[int], groups: Sequence[Sequence[str]]
    ) -> None:
        self.index = BM25([terms(t) for t in texts])
        self._ranks = np.array(ranks, dtype=np.int64)
        self._visible = {r: self._ranks <= r for r in sorted(set(ranks))}
        self._groups = groups
        self._members: dict[str, list[int]] = defaultdict(list)
        for i, keys in enumerate(groups):
            for key in keys:
                self._members[key].append(i)

    def of(self, i: int, k: int) -> list[int]:
        """The k nearest items to item i that it may see."""
        exclude = {j for key in self._groups[i] for j in self._members[key]}
        return self.index.nearest(i, k, self._visible[int(self._ranks[i])], exclude)

    def for_question(self, question: str, i: int, k: int, exclude: Iterable[int] = ()) -> list[int]:
        """The k items best matching a question about item i, among those item i may see.

        Item i itself, its group and `exclude` are left out: the caller places the oracle.
        """
        exclude = {j for key in self._groups[i] for j in self._members[key]} | set(exclude)
        allowed = self._visible[int(self._ranks[i])].copy()
        allowed[list(exclude)] = False
        return self.index.search(query_terms(question), k, allowed)


def shingles(text: str, width: int = 3) -> set[str]:
    """Word `width`-grams of a lower-cased, punctuation-free text (the words if it is shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) <= width:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + width]) for i in range(len(words) - width + 1)}


class NearDupIndex:
    """MinHash with LSH banding: is a text a near-duplicate of one already kept?

    A text is a candidate when one band of its signature equals a kept text's band; the
    candidate is confirmed when the signatures agree on at least `threshold` of their
    positions (an estimate of the shingle Jaccard similarity). Shingles hash with crc32 and
    permute with fixed multiply-shift hashes, so the result never depends on the process.
    """

    def __init__(self, threshold: float = 0.9, num_perm: int = 32, bands: int = 4) -> None:
        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        self.threshold = threshold
        self.bands = bands
        self.rows = num_perm // bands
        rng = np.random.Generator(np.random.PCG64(20240314))
        self._mul = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self._add = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._buckets: dict[int, int] = {}
        self._signatures = np.zeros((1024, num_perm), dtype=np.uint32)
        self._count = 0

    def signature(self, text: str) -> np.ndarray:
        """The MinHash signature (num_perm uint32 values) of a text's word shingles."""
        grams = shingles(text)
        if not grams:
            grams = {""}
        base = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64)
        with np.errstate(over="ignore"):
            mixed = (np.outer(self._mul, base) + self._add[:, None]) >> np.uint64(32)
        return mixed.min(axis=1).astype(np.uint32)

    def add_if_new(self, text: str) -> bool:
        """Keep `text` and return True, or return False when it near-duplicates a kept one."""
        sig = self.signature(text)
        keys = [
            (b << 32) | zlib.crc32(sig[b * self.rows : (b + 1) * self.rows].tobytes())
            for b in range(self.bands)
        ]
        for key in keys:
            other = self._buckets.get(key)
            if other is not None:
                agree = float(np.mean(self._signatures[other] == sig))
                if agree >= self.threshold:
                    return False
        if self._count == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
        self._signatures[self._count] = sig
        for key in keys:
            self._buckets.setdefault(key, self._count)
        self._count += 1
        return True
