"""The knowledge probe's questions: facts about mined symbols, asked in words no template uses.

Five kinds of question, each about one fact the mined code states outright: the file that
defines a symbol, its parameters, its return type, what calls it, what a file defines. Each
item names the right facts (`expected`), the wrong facts of the same sort an answer might give
instead (`rivals`), other spellings of each (`aliases`), and the retrieval documents that
state the answer (`doc_ids`). Scoring lives in guardian/evaluation/probe.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import Required, TypedDict

from guardian.core.schema import Chunk, ProbeItem, ProbeKind
from guardian.data.docfacts import module_name, parameter_names, return_annotation
from guardian.data.facts import callers_of, is_public, is_test_path, top_level
from guardian.data.raft import sample_rng

__all__ = ["KINDS", "PHRASINGS", "build_probe"]

KINDS: tuple[ProbeKind, ...] = ("file", "params", "returns", "callers", "members")
# Never reuse these words in prompts/: the probe measures knowledge, not template recall.
PHRASINGS: dict[ProbeKind, tuple[str, ...]] = {
    "file": (
        "Which file of this repository defines `{name}`?",
        "I need to edit `{name}`. What is the path of the file it lives in?",
        "Tell me the source file that contains the {kind} `{name}`.",
    ),
    "params": (
        "What arguments does `{name}` accept?",
        "List the parameter names of `{name}`.",
        "When calling `{name}`, which arguments can I pass?",
    ),
    "returns": (
        "What type of value comes back from `{name}`?",
        "`{name}` hands back what type?",
        "Name the return type of `{name}`.",
    ),
    "callers": (
        "Which functions or methods make use of `{name}`?",
        "Who invokes `{name}` in this codebase?",
        "Name a place in the code that calls `{name}`.",
    ),
    "members": (
        "List the top-level definitions in `{name}`.",
        "Which functions and classes can be found in the file `{name}`?",
        "Give me an overview of what `{module}` defines.",
    ),
}


# Builtin types as prose says them: "returns a string" answers `-> str`.
_TYPE_WORDS = {"str": "string", "int": "integer", "bool": "boolean", "dict": "dictionary"}


class _Found(TypedDict, total=False):
    expected: Required[list[str]]
    need: Required[int]
    rivals: Required[list[str]]
    aliases: dict[str, str]
    docs: Required[list[str]]


class _Repo:
    """Lookup tables over one commit's chunks shared by every question kind."""

    def __init__(self, chunks: Sequence[Chunk], seen: Collection[str]) -> None:
        self.chunks = sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname))
        self.seen = set(seen)
        self.paths = sorted({c.path for c in chunks})
        self.short = Counter(c.name for c in chunks)
        self.callers = callers_of(self.chunks)
        self.files = top_level(self.chunks)
        self.by_qualname = {c.qualname: c for c in self.chunks}
        self.params = {c.id: parameter_names(c) for c in self.chunks}
        self.returns = {c.id: return_annotation(c) for c in self.chunks}
        self.all_params = {n for names in self.params.values() for n in names or ()}
        self.all_returns = set(self.returns.values()) - {""}
        self.qualnames = {c.qualname for c in self.chunks}
        self.paths_alias = self.path_aliases()

    def label(self, chunk: Chunk) -> str:
        """How a question names a unit: its short name when unique, else its qualname."""
        return (
            chunk.name if self.short[chunk.name] == 1 and chunk.kind != "method" else chunk.qualname
        )

    def name_aliases(self, qualnames: Collection[str]) -> dict[str, str]:
        """Short name -> qualname for units whose short name is unique in the repo."""
        out: dict[str, str] = {}
        for q in qualnames:
            c = self.by_qualname.get(q)
            if c is not None and c.name != q and self.short[c.name] == 1:
                out[c.name] = q
        return out

    def path_aliases(self) -> dict[str, str]:
        """Unique file names and dotted module paths -> the file path they stand for."""
        names = Counter(p.rsplit("/", 1)[-1] for p in self.paths)
        out: dict[str, str] = {}
        for p in self.paths:
            base = p.rsplit("/", 1)[-1]
            if names[base] == 1 and base != p:
                out[base] = p
            module = module_name(p)
            if module and module != p and "." in module:
                out[module] = p
        return out

    def targets(self) -> list[Chunk]:
        """Public units outside test files, in file order."""
        return [c for c in self.chunks if is_public(c) and not is_test_path(c.path)]


def _file(repo: _Repo, c: Chunk) -> _Found | None:
    aliases = repo.paths_alias
    docs = [c.id] + ([f"module:{c.path}"] if "." not in c.qualname else [])
    rivals = [p for p in repo.paths if p != c.path]
    return {"expected": [c.path], "need": 1, "rivals": rivals, "aliases": aliases, "docs": docs}


def _params(repo: _Repo, c: Chunk) -> _Found | None:
    names = repo.params[c.id]
    if not names:
        return None
    rivals = sorted(repo.all_params - set(names))
    return {"expected": names, "need": len(names), "rivals": rivals, "docs": [c.id]}


def _returns(repo: _Repo, c: Chunk) -> _Found | None:
    ret = repo.returns[c.id]
    if not ret:
        return None
    rivals = sorted(repo.all_returns - {ret})
    words = {r: _TYPE_WORDS[r] for r in rivals if r in _TYPE_WORDS}
    if ret in _TYPE_WORDS:
        words[ret] = _TYPE_WORDS[ret]
    aliases = {word: name for name, word in words.items()}
    return {"expected": [ret], "need": 1, "rivals": rivals, "aliases": aliases, "docs": [c.id]}


def _callers(repo: _Repo, c: Chunk) -> _Found | None:
    callers = repo.callers.get(c.id)
    if not callers:
        return None
    rivals = sorted(repo.qualnames - set(callers) - {c.qualname})
    aliases = repo.name_aliases([*callers, *rivals])
    return {"expected": callers, "need": 1, "rivals": rivals, "aliases": aliases, "docs": [c.id]}


_BUILDERS: dict[ProbeKind, Callable[[_Repo, Chunk], _Found | None]] = {
    "file": _file,
    "params": _params,
    "returns": _returns,
    "callers": _callers,
}


def _members(repo: _Repo, path: str) -> _Found | None:
    names = [c.qualname for c in repo.files.get(path, [])]
    if len(names) < 2:
        return None
    rivals = sorted({c.qualname for p, cs in repo.files.items() if p != path for c in cs})
    rivals = [r for r in rivals if r not in names]
    return {
        "expected": names,
        "need": min(3, len(names)),
        "rivals": rivals,
        "docs": [f"module:{path}"],
    }


def _item(
    kind: ProbeKind,
    seed: int,
    symbol: str,
    path: str,
    seen: bool,
    fields: dict[str, str],
    found: _Found,
) -> ProbeItem:
    rng = sample_rng(seed, "probe", kind, path, symbol)
    question = rng.choice(PHRASINGS[kind]).format_map(fields)
    return ProbeItem(
        id=f"{kind}:{path}:{symbol}",
        kind=kind,
        question=question,
        symbol=symbol,
        path=path,
        seen=seen,
        expected=found["expected"],
        need=found["need"],
        rivals=found["rivals"],
        aliases=found.get("aliases", {}),
        doc_ids=found["docs"],
    )


def _spread(items: list[ProbeItem], k: int) -> list[ProbeItem]:
    if k <= 0 or len(items) <= k:
        return items
    return [items[i * len(items) // k] for i in range(k)]


def build_probe(
    chunks: Sequence[Chunk], seen_paths: Collection[str], *, seed: int = 0, per_kind: int = 12
) -> list[ProbeItem]:
    """Up to `per_kind` questions of each kind about one commit's chunks, spread over the repo.

    `seen_paths` are the files the model was trained on; each item records whether its
    symbol's file is one of them. Deterministic for the same chunks, paths and seed.
    """
    repo = _Repo(chunks, seen_paths)
    by_kind: dict[ProbeKind, list[ProbeItem]] = defaultdict(list)
    for c in repo.targets():
        fields = {"name": repo.label(c), "kind": c.kind, "module": module_name(c.path)}
        for kind, build in _BUILDERS.items():
            found = build(repo, c)
            if found is not None:
                seen = c.path in repo.seen
                by_kind[kind].append(_item(kind, seed, c.qualname, c.path, seen, fields, found))
    for path in repo.files:
        if is_test_path(path):
            continue
        found = _members(repo, path)
        if found is not None:
            fields = {"name": path, "module": module_name(path)}
            seen = path in repo.seen
            by_kind["members"].append(_item("members", seed, path, path, seen, fields, found))
    return [item for kind in KINDS for item in _spread(by_kind[kind], per_kind)]
