"""Write the shipped replay prompts: general questions whose base-model answers are mixed into
training so a fine-tune keeps the base's general behaviour (guardian/ml/replay).

    python scripts/make_replay_prompts.py   # rewrites guardian/ml/replay/prompts.jsonl

Only prompts are stored; the answers are the base model's own, generated on first use. The
set is disjoint from the guard set (guardian/evaluation/guard), which measures forgetting and
must stay unseen: no prompt here repeats a guard question, names a built-in function the guard
asks about, or uses the guard's wordings. Three parts: Python standard-library functions
(outside builtins), explanations of general and computing ideas, and small coding tasks. The
output is committed and fixed: run this only to change the set on purpose.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "guardian" / "ml" / "replay" / "prompts.jsonl"

MODULES = [
    "base64", "bisect", "copy", "csv", "difflib", "fnmatch", "functools", "glob", "gzip",
    "hashlib", "heapq", "html", "inspect", "itertools", "json", "math", "operator", "os.path",
    "random", "re", "shlex", "shutil", "statistics", "string", "tempfile", "textwrap", "time",
    "unicodedata", "urllib.parse", "uuid", "zlib",
]  # fmt: skip
PER_MODULE = 4
STDLIB_WORDINGS = [
    "What is `{name}` used for in Python?",
    "Briefly describe the Python function `{name}`.",
    "What does calling `{name}` give you?",
    "Explain `{name}` from the Python standard library in one sentence.",
]

CONCEPTS = [
    "a linked list", "a binary tree", "a graph in computer science", "a database index",
    "an operating system", "a cache", "a thread", "a process", "garbage collection",
    "a regular expression", "Unicode", "encryption", "a checksum", "a race condition",
    "a deadlock", "TCP", "DNS", "an IP address", "a web browser", "a URL", "a virtual machine",
    "a container image", "a shell", "an environment variable", "a compiler warning",
    "a software library", "an interpreter", "a variable", "a loop", "a function argument",
    "an exception", "a pull request", "a merge conflict", "code review", "a linter",
    "a dependency", "semantic versioning", "a log file", "a configuration file",
    "a command-line interface", "the water cycle", "gravity", "a volcano", "an eclipse",
    "the seasons of the year", "a rainbow", "evaporation", "the human heart", "a vaccine",
    "inflation in economics", "a democracy", "a library catalogue", "a recipe",
    "a calendar", "a map scale", "a thermometer", "a battery", "a magnet", "an echo",
    "a bridge",
]  # fmt: skip
CONCEPT_WORDINGS = [
    "Explain briefly what {c} is.",
    "In a sentence or two, what is {c}?",
    "Describe {c} to a beginner.",
]

TASKS = [
    "merges two dictionaries into a new one", "splits a list into chunks of size n",
    "capitalises every word of a sentence", "returns the greatest common divisor of two integers",
    "removes duplicate spaces from a string", "counts how often each letter appears in a string",
    "returns the last n lines of a text", "converts minutes to hours and minutes",
    "checks whether a year is a leap year", "returns the median of a list of numbers",
    "swaps the keys and values of a dictionary", "returns the product of a list of numbers",
    "finds the longest word in a sentence", "rotates a list by k positions",
    "returns every even number below n", "joins a list of words with commas",
    "checks whether two strings are anagrams", "returns the digits of an integer as a list",
    "converts a string to snake_case", "returns the index of the smallest item in a list",
    "sums the squares of the numbers from 1 to n", "tells whether a list is sorted",
    "truncates a string to n characters with an ellipsis", "pads a number with leading zeros",
    "returns the intersection of two lists", "counts the lines of a file",
    "reverses the order of words in a sentence", "returns the running totals of a list",
    "groups words by their first letter", "returns the n-th triangular number",
    "converts a list of pairs into a dictionary", "checks whether a string is a valid integer",
    "removes every vowel from a string", "returns the second largest number in a list",
    "counts the distinct items of a list", "returns the average word length of a text",
    "tells whether a number is a power of two", "returns a string repeated n times with spaces",
    "keeps only the positive numbers of a list", "returns the initials of a full name",
]  # fmt: skip
TASK_WORDINGS = [
    "Write a short Python function that {t}.",
    "Show Python code for a function that {t}.",
]


def _guard_words() -> tuple[set[str], set[str]]:
    """The guard's questions and the names of the built-ins it asks about."""
    guard = Path(__file__).resolve().parents[1] / "guardian" / "evaluation" / "guard"
    questions: set[str] = set()
    for line in (guard / "guard.jsonl").read_text().splitlines():
        questions.add(json.loads(line)["input"])
    return questions, set(dir(builtins))


def _stdlib() -> list[dict[str, str]]:
    builtin_names = _guard_words()[1]
    out: list[dict[str, str]] = []
    k = 0
    for mod_name in MODULES:
        module = importlib.import_module(mod_name)
        names = sorted(
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and n not in builtin_names
            and (inspect.isfunction(obj) or inspect.isbuiltin(obj))
            and (obj.__doc__ or "").strip()
        )
        for n in names[:PER_MODULE]:
            wording = STDLIB_WORDINGS[k % len(STDLIB_WORDINGS)]
            out.append({"input": wording.format(name=f"{mod_name}.{n}"), "part": "stdlib"})
            k += 1
    return out


def main() -> None:
    rows = _stdlib()
    rows += [
        {"input": CONCEPT_WORDINGS[i % len(CONCEPT_WORDINGS)].format(c=c), "part": "concept"}
        for i, c in enumerate(CONCEPTS)
    ]
    rows += [
        {"input": TASK_WORDINGS[i % len(TASK_WORDINGS)].format(t=t), "part": "code"}
        for i, t in enumerate(TASKS)
    ]
    questions, _ = _guard_words()
    clash = [r["input"] for r in rows if r["input"] in questions]
    if clash:
        raise SystemExit(f"replay prompts repeat guard questions: {clash}")
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{OUT}: {len(rows)} prompts")


if __name__ == "__main__":
    main()
