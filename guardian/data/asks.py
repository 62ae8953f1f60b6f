"""Answer-quality questions: what people ask about a repo's code, built from what it states.

Five kinds, each about one public symbol outside the tests: explain it, how to do a task it
does (the task in words, never its name), where a concept is handled, how to call it, and
write it (Python functions and methods, with the repo's tests that exercise it). Each item
carries what a good answer shows (the symbol, its file, its docstring's content words, its
parameters, its real code), so guardian/evaluation/answers.py scores it without a judge
model. The wordings appear in no training template and no probe question.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence

from guardian.core.schema import AskItem, AskKind, Chunk
from guardian.data.docfacts import body_of, call_example, parameter_names, summary_of
from guardian.data.facts import callers_of, is_public, is_test_path, top_level
from guardian.data.raft import sample_rng
from guardian.data.tasks import is_verb, task_of

__all__ = ["KINDS", "PHRASINGS", "build_asks", "content_words", "tests_exercising"]

KINDS: tuple[AskKind, ...] = ("explain", "howto", "where", "usage", "code")
# Never reuse these words in prompts/ or in the probe: the items measure answers to questions
# the model was not trained on. A wording is used only when every field it names is known.
PHRASINGS: dict[AskKind, tuple[str, ...]] = {
    "explain": (
        "Explain what `{qualname}` does.",
        "What is `{name}` for, and when would I use it?",
        "Walk me through `{qualname}`.",
    ),
    "howto": (
        "How do I {task}?",
        "I need to {task}. Which function does that, and what does a call look like?",
        "What is the way to {task} with this code?",
    ),
    "where": (
        "Where is {concept} handled in this codebase?",
        "Which file should I open to change how {concept} works?",
        "Where in this repository is the code to {task}?",
        "Which file holds the code to {task}?",
    ),
    "usage": (
        "Show me how to call `{qualname}`.",
        "Give an example call of `{name}`.",
    ),
    "code": (
        "Write the function `{signature}`: {summary}",
        "Implement `{qualname}` as this repository would.",
        "Write the method `{qualname}` (`{signature}`): {method_summary}",
    ),
}

MAX_CONTENT = 10
MAX_CODE_LINES = 40  # longer definitions are asked for only when shorter ones run out

_STOPWORDS = frozenset(
    """about above after again against also among another anything because been before
    being below between both could does doing done down during each either else every
    everything from further given have having here into itself just least less like more
    most much must neither nothing once only other otherwise over same shall should some
    something such than that their them then there these they this those through under
    until upon used uses using very was were what when where whether which while whose
    will with within without would your return returns true false none""".split()
)
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _name_words(chunk: Chunk) -> list[str]:
    parts = re.split(r"[._]+", _CAMEL.sub("_", chunk.qualname))
    return [p.lower() for p in parts if p]


def _names_symbol(text: str, chunk: Chunk) -> bool:
    """Whether text names the symbol as code: its qualname, `name`, or a compound name."""
    if chunk.qualname in text or f"`{chunk.name}`" in text:
        return True
    compound = "_" in chunk.name.strip("_") or bool(_CAMEL.search(chunk.name))
    return compound and re.search(rf"(?<!\w){re.escape(chunk.name)}(?!\w)", text) is not None


def content_words(summary: str, params: Sequence[str], callers: Sequence[str]) -> list[str]:
    """Up to MAX_CONTENT lowercase words an explanation should carry: the summary's content
    words (no stopwords, none under four letters), then parameter and caller names."""
    found = [w.lower() for w in _WORDS.findall(summary.replace("`", " "))]
    found += [p.lower() for p in params]
    found += [c.rsplit(".", 1)[-1].lower() for c in callers]
    out: list[str] = []
    for word in found:
        if len(word) >= 4 and word not in _STOPWORDS and word not in out:
            out.append(word)
    return out[:MAX_CONTENT]


def _callers_among(target: Chunk, pool: Sequence[Chunk]) -> list[str]:
    """`callers_of` for one target whose short name is unique in the repo, over the units of
    `pool` that mention its name: the same callers (and cap), without matching every unit
    against every other. The pool is renamed so that its units are callers only."""
    near = [
        c.model_copy(update={"name": "__caller__"})
        for c in pool
        if c.id != target.id and c.kind != "class" and target.name in c.code
    ]
    return callers_of([target, *near]).get(target.id, []) if near else []


def tests_exercising(chunks: Sequence[Chunk]) -> dict[str, list[str]]:
    """Qualname -> the Python test files whose functions call it directly (sorted paths).

    Only units with a repo-unique short name get tests, as with `callers_of`; each target is
    matched against the test units alone, so other callers never crowd them out.
    """
    python = [c for c in chunks if c.language == "python"]
    tests = [c for c in python if is_test_path(c.path)]
    names = Counter(c.name for c in chunks)
    out: dict[str, list[str]] = {}
    for target in python:
        if is_test_path(target.path) or names[target.name] != 1:
            continue
        callers = set(_callers_among(target, tests))
        paths = sorted({t.path for t in tests if t.qualname in callers})
        if paths:
            out[target.qualname] = paths
    return out


class _Repo:
    """Lookup tables over one commit's chunks shared by every question kind."""

    def __init__(self, chunks: Sequence[Chunk], seen: Collection[str]) -> None:
        self.chunks = sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname))
        self.seen = set(seen)
        self.short = Counter(c.name for c in self.chunks)
        self.callers = callers_of(self.chunks)
        self.tests = tests_exercising(self.chunks)
        self.top = {c.id for cs in top_level(self.chunks).values() for c in cs}

    def label(self, chunk: Chunk) -> str:
        """How a question names a unit: its short name when unique, else its qualname."""
        unique = self.short[chunk.name] == 1 and chunk.kind != "method"
        return chunk.name if unique else chunk.qualname

    def targets(self) -> list[Chunk]:
        """Public units outside test files, in file order."""
        return [c for c in self.chunks if is_public(c) and not is_test_path(c.path)]

    def item(self, kind: AskKind, chunk: Chunk, index: int, question: str) -> AskItem:
        """The item asking `question` about `chunk`, with everything its score needs."""
        params = parameter_names(chunk) or []
        summary = summary_of(chunk.docstring)
        callers = self.callers.get(chunk.id, [])
        plain_callers = [q for q in callers if not q.split(".")[-1].startswith("test")]
        docs = [chunk.id] + ([f"module:{chunk.path}"] if chunk.id in self.top else [])
        key = "\x00".join([kind, chunk.path, chunk.qualname, str(index)])
        code = kind == "code"
        return AskItem(
            id=hashlib.sha256(key.encode()).hexdigest()[:16],
            kind=kind,
            question=question,
            qualname=chunk.qualname,
            name=chunk.name,
            path=chunk.path,
            start_line=chunk.start_line,
            end_line=chunk.end_line,
            language=chunk.language,
            signature=" ".join(chunk.signature.split()),
            params=params,
            call=call_example(chunk),
            summary=summary,
            content=content_words(summary, params, plain_callers),
            callers=callers,
            doc_ids=docs if kind == "where" else [chunk.id],
            seen=chunk.path in self.seen,
            tests=self.tests.get(chunk.qualname, []) if code else [],
            reference=chunk.code if code else "",
        )


# A candidate: (preference tier, lower first) and the fields its wordings may use.
_Candidate = tuple[int, dict[str, str]]


def _explain(repo: _Repo, c: Chunk) -> _Candidate | None:
    return (0 if summary_of(c.docstring) else 1), {"qualname": c.qualname, "name": repo.label(c)}


def _howto(repo: _Repo, c: Chunk) -> _Candidate | None:
    if c.kind == "class":
        return None
    task, _verb = task_of(summary_of(c.docstring))
    if task and not _names_symbol(task, c):
        return 0, {"task": task}
    words = [w.lower() for w in re.split(r"_+", _CAMEL.sub("_", c.name)) if w]
    if len(words) < 2 or not is_verb(words[0]):
        return None  # a name that is not a verb phrase, or one word, says no task
    return 1, {"task": " ".join(words)}


def _where(repo: _Repo, c: Chunk) -> _Candidate | None:
    summary = summary_of(c.docstring)
    task, verb = task_of(summary)
    if verb and not _names_symbol(task, c):
        return 0, {"task": task}
    if summary and not verb:
        return 0, {"concept": task.removeprefix("get ").split(", ", 1)[0]}
    return 1, {"concept": "the " + " ".join(_name_words(c))}


def _usage(repo: _Repo, c: Chunk) -> _Candidate | None:
    if c.language != "python" or c.kind == "class" or not call_example(c):
        return None
    return (0 if parameter_names(c) else 1), {"qualname": c.qualname, "name": repo.label(c)}


def _code(repo: _Repo, c: Chunk) -> _Candidate | None:
    if c.language != "python" or c.kind == "class" or not body_of(c):
        return None
    summary = summary_of(c.docstring)
    fields = {"qualname": c.qualname, "signature": " ".join(c.signature.split())}
    if summary:
        fields["method_summary" if c.kind == "method" else "summary"] = summary
    tier = (0 if c.qualname in repo.tests else 1) + (0 if summary else 1)
    long = c.end_line - c.start_line + 1 > MAX_CODE_LINES
    return tier + (2 if long else 0), fields


_BUILDERS: dict[AskKind, Callable[[_Repo, Chunk], _Candidate | None]] = {
    "explain": _explain,
    "howto": _howto,
    "where": _where,
    "usage": _usage,
    "code": _code,
}


def _fields_of(wording: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(wording) if name}


def _pick(found: list[tuple[int, Chunk]], kind: AskKind, seed: int, k: int) -> list[Chunk]:
    """Up to k units, preferred tiers first, each tier taken round-robin over its files in a
    seeded order, so the items spread over the repo and change with the seed."""
    tiers: dict[int, dict[str, list[Chunk]]] = defaultdict(lambda: defaultdict(list))
    for tier, c in found:
        tiers[tier][c.path].append(c)
    picked: list[Chunk] = []
    for tier in sorted(tiers):
        files = sorted(tiers[tier])
        sample_rng(seed, "asks", kind, str(tier)).shuffle(files)
        queues = {}
        for path in files:
            queues[path] = list(tiers[tier][path])
            sample_rng(seed, "asks", kind, path).shuffle(queues[path])
        while len(picked) < k and any(queues.values()):
            for path in files:
                if queues[path] and len(picked) < k:
                    picked.append(queues[path].pop())
    return picked


def build_asks(
    chunks: Sequence[Chunk], seen: Collection[str], *, seed: int, per_kind: int
) -> list[AskItem]:
    """Up to `per_kind` questions of each kind about one commit's public symbols.

    `seen` are the files the model was trained on (each item records whether its symbol's
    file is one). Deterministic for the same chunks, files and seed.
    """
    repo = _Repo(chunks, seen)
    items: list[AskItem] = []
    for kind in KINDS:
        fields: dict[str, dict[str, str]] = {}
        found: list[tuple[int, Chunk]] = []
        for c in repo.targets():
            candidate = _BUILDERS[kind](repo, c)
            if candidate is not None:
                found.append((candidate[0], c))
                fields[c.id] = candidate[1]
        chosen = sorted(
            _pick(found, kind, seed, per_kind), key=lambda c: (c.path, c.start_line, c.qualname)
        )
        for c in chosen:
            usable = [
                i for i, w in enumerate(PHRASINGS[kind]) if _fields_of(w) <= fields[c.id].keys()
            ]
            index = sample_rng(seed, "asks", kind, c.path, c.qualname).choice(usable)
            question = PHRASINGS[kind][index].format_map(fields[c.id])
            items.append(repo.item(kind, c, index, question))
    return items
