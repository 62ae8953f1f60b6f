"""A docstring summary as a task in words: what a person would ask how to do.

"Cancels the order and releases stock." becomes "cancel the order and release stock", a
noun phrase ("Units of a product on hand.") becomes "get the units of a product on hand",
"True when ..." becomes "check whether ...". A heuristic over the first clause (a small verb
list and third-person endings), good enough to ask a question without naming the symbol.
"""

from __future__ import annotations

import re

__all__ = ["is_verb", "task_of"]

_VERBS = frozenset(
    """add allocate append apply assign attach book build calculate call cancel check clean
    clear close collect combine compare compute convert copy correct count create decode
    delete describe detect drop emit encode ensure estimate evaluate execute expand export
    extract fetch fill filter find finish fix flush format generate group handle hash
    import initialise initialize insert install iterate join keep load lock log look make
    map mark match merge move normalise normalize notify open parse pick place post prepare
    print process publish pull push put read receive reduce refresh register reject release
    reload remove rename render replace report request reset resolve restore retry round
    run save scan schedule score search select send serialise serialize set ship show skip
    sort split start stop store strip submit swap sync take track train transfer transform
    translate trim turn undo unlock update upload validate verify wait walk watch wrap
    write restock reorder refund fulfil fulfill""".split()
)
_DETERMINERS = frozenset(
    "a an the all every each any some one its their this these anything everything".split()
)
_PREPOSITIONS = frozenset("of per for in on by with from to at that which whose as into".split())
_DANGLING = frozenset("a an the and or as of per for in on by with from to at".split())
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"])")
_CUT = re.compile(r";|:\s|,\s+e\.g\.|\s\(e\.g\.|,\s+such as\b")


def is_verb(word: str) -> bool:
    """Whether a lowercase word is one of the verbs a summary or a name may start with."""
    return word in _VERBS


def _third_to_base(word: str) -> str:
    """`cancels` -> `cancel`, `applies` -> `apply`, `matches` -> `match`."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    return word[:-1]


def _is_third_person(word: str, following: str) -> bool:
    plain = word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3
    if not plain or following in _PREPOSITIONS or following.endswith("ly"):
        return False
    return _third_to_base(word) in _VERBS or following in _DETERMINERS


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text if first[1:] and not first[1:].islower() else text[:1].lower() + text[1:]


def _clause(summary: str) -> str:
    """The first sentence of a summary, cut before a `;`, `: ` or `e.g.`, without its stop;
    a backtick or bracket the cut left open is dropped with what follows it."""
    sentence = _SENTENCE.split(summary.strip(), maxsplit=1)[0]
    clause = _CUT.split(sentence, maxsplit=1)[0]
    for opening, closing in (("`", "`"), ("(", ")"), ("[", "]"), ("{", "}")):
        unbalanced = (
            clause.count("`") % 2
            if opening == "`"
            else clause.count(opening) > clause.count(closing)
        )
        if unbalanced:
            clause = clause[: clause.rfind(opening)]
    words = clause.strip().rstrip(".!?,;( ").split()
    while words and words[-1].lower() in _DANGLING:
        words = words[:-1]
    return " ".join(words).rstrip(",;")


def _noun_phrase(clause: str) -> str:
    """A clause that does not start with a verb as a noun phrase (`the stock level ...`)."""
    words = clause.split()
    first = words[0].lower()
    if first == "raised":
        return "the error " + _lower_first(clause)
    return _lower_first(clause) if first in _DETERMINERS else "the " + _lower_first(clause)


def _verb_task(words: list[str]) -> str | None:
    """The task of a clause that starts with a verb, as an imperative; None when it does not."""
    first, following = words[0].lower(), (words[1].lower() if len(words) > 1 else "")
    if first in ("return", "returns", "get", "gets"):
        rest = [w.lower() for w in words[1:3]]
        if rest[:1] == ["whether"] or rest in (["true", "if"], ["true", "when"]):
            tail = words[2:] if rest[0] == "whether" else words[3:]
            return "check whether " + " ".join(tail) if tail else None
        return "get " + " ".join(words[1:]) if len(words) > 1 else None
    if first in _VERBS and following != "of":
        return " ".join([first, *words[1:]])
    if not _is_third_person(first, following):
        return None
    out = [_third_to_base(first)]
    for i, word in enumerate(words[1:], start=1):
        after = words[i + 1].lower() if i + 1 < len(words) else ""
        joined = words[i - 1].lower() == "and" and after and after not in _PREPOSITIONS
        out.append(_third_to_base(word) if joined and _is_third_person(word, after) else word)
    return " ".join(out)


def task_of(summary: str) -> tuple[str, bool]:
    """A docstring summary as a task to ask how to do, and whether it started with a verb.

    "Cancels the order and releases stock." -> ("cancel the order and release stock", True);
    a noun phrase becomes "get the ..." ("Units on hand." -> "get the units on hand");
    "True when ..." becomes "check whether ...". ("", False) for an empty summary.
    """
    clause = _clause(summary)
    words = clause.split()
    if not words:
        return "", False
    first = words[0].lower()
    if first in ("true", "false") and len(words) > 2 and words[1].lower() in ("if", "when"):
        return "check whether " + " ".join(words[2:]), True
    if first == "whether":
        return "check " + _lower_first(clause), True
    if first in ("how", "what", "which"):
        return "work out " + _lower_first(clause), True
    verb = _verb_task(words)
    if verb is not None:
        return verb, True
    return "get " + _noun_phrase(clause), False
