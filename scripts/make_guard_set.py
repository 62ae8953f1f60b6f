"""Write the shipped guard set: general questions a fine-tuned model must not forget.

    python scripts/make_guard_set.py   # rewrites guardian/evaluation/guard/guard.jsonl

Three parts, none about any user's repo: Python's built-in functions and the methods of its
core types (answers: the first sentence of their own docstrings, so every answer is a fact
the interpreter states about itself), general knowledge questions, and small code-writing
prompts with a reference solution (both written for this project). The output is committed
and fixed: run this only to change the set on purpose (the evaluate step's cache key covers
the file's contents).
"""

from __future__ import annotations

import builtins
import json
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "guardian" / "evaluation" / "guard" / "guard.jsonl"
TYPES = (str, list, dict, set, bytes, int, float, tuple)
SITE = {"copyright", "credits", "exit", "help", "license", "quit"}  # added by site, not builtins

GENERAL = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("How many days are there in a leap year?", "A leap year has 366 days."),
    ("What is 12 multiplied by 12?", "12 multiplied by 12 is 144."),
    ("What is the boiling point of water at sea level in Celsius?",
     "Water boils at 100 degrees Celsius at sea level."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("What gas do plants absorb from the air for photosynthesis?",
     "Plants absorb carbon dioxide for photosynthesis."),
    ("How many minutes are there in an hour?", "There are 60 minutes in an hour."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest ocean on Earth."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("Who wrote the play Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is the freezing point of water in Fahrenheit?",
     "Water freezes at 32 degrees Fahrenheit."),
    ("How many continents are there?", "There are seven continents."),
    ("What is the opposite of 'ascending' when sorting?",
     "The opposite of ascending is descending."),
    ("What does CPU stand for?", "CPU stands for central processing unit."),
    ("What does RAM stand for?", "RAM stands for random-access memory."),
    ("What does HTTP stand for?", "HTTP stands for Hypertext Transfer Protocol."),
    ("What does JSON stand for?", "JSON stands for JavaScript Object Notation."),
    ("What does SQL stand for?", "SQL stands for Structured Query Language."),
    ("What is a prime number?",
     "A prime number is a whole number greater than 1 whose only divisors are 1 and itself."),
    ("What is binary?", "Binary is a number system with base 2 that uses only the digits 0 and 1."),
    ("How many bits are in a byte?", "A byte has 8 bits."),
    ("What is 2 to the power of 10?", "2 to the power of 10 is 1024."),
    ("What is an algorithm?",
     "An algorithm is a finite sequence of steps that solves a problem or computes a result."),
    ("What does a compiler do?",
     "A compiler translates source code into another form, usually machine code or bytecode."),
    ("What is version control?",
     "Version control records changes to files over time so earlier versions can be recalled."),
    ("What is git?", "Git is a distributed version control system."),
    ("What is a git commit?",
     "A git commit is a snapshot of the tracked files together with a message and its parent."),
    ("What is a unit test?",
     "A unit test checks that a small piece of code, such as one function, behaves as expected."),
    ("What is recursion in programming?",
     "Recursion is when a function solves a problem by calling itself on smaller inputs."),
    ("What is the difference between a list and a tuple in Python?",
     "A list is mutable and a tuple is immutable."),
    ("What is a hash table?",
     "A hash table maps keys to values using a hash function to find each key's slot."),
    ("What is the time complexity of binary search?",
     "Binary search runs in O(log n) time on a sorted sequence."),
    ("What is a stack?", "A stack is a last-in, first-out collection."),
    ("What is a queue?", "A queue is a first-in, first-out collection."),
    ("What is an API?",
     "An API is an application programming interface: the operations one program offers another."),
    ("What is the speed of light in a vacuum, approximately?",
     "The speed of light in a vacuum is about 300,000 kilometres per second."),
    ("What is the largest planet in the solar system?",
     "Jupiter is the largest planet in the solar system."),
]  # fmt: skip

CODE = [
    ("Write a Python function `add(a, b)` that returns the sum of two numbers.",
     "def add(a, b):\n    return a + b"),
    ("Write a Python function `is_even(n)` that tells whether an integer is even.",
     "def is_even(n):\n    return n % 2 == 0"),
    ("Write a Python function `square(x)` that returns x squared.",
     "def square(x):\n    return x * x"),
    ("Write a Python function `reverse(text)` that returns the string reversed.",
     "def reverse(text):\n    return text[::-1]"),
    ("Write a Python function `total(numbers)` that returns the sum of a list of numbers.",
     "def total(numbers):\n    return sum(numbers)"),
    ("Write a Python function `largest(items)` that returns the largest item of a list.",
     "def largest(items):\n    return max(items)"),
    ("Write a Python function `count_words(text)` that returns how many words a string has.",
     "def count_words(text):\n    return len(text.split())"),
    ("Write a Python function `factorial(n)` that returns n factorial.",
     "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n"
     "    return result"),
    ("Write a Python function `fibonacci(n)` that returns the n-th Fibonacci number.",
     "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
     "    return a"),
    ("Write a Python function `is_palindrome(text)` that tells whether a string reads the "
     "same backwards.", "def is_palindrome(text):\n    return text == text[::-1]"),
    ("Write a Python function `unique(items)` that returns the distinct items of a list in "
     "their first order.", "def unique(items):\n    return list(dict.fromkeys(items))"),
    ("Write a Python function `mean(values)` that returns the average of a list of numbers.",
     "def mean(values):\n    return sum(values) / len(values)"),
    ("Write a Python function `celsius_to_fahrenheit(c)`.",
     "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32"),
    ("Write a Python function `read_lines(path)` that returns the lines of a text file.",
     "def read_lines(path):\n    with open(path) as f:\n        return f.read().splitlines()"),
    ("Write a Python function `flatten(rows)` that flattens a list of lists.",
     "def flatten(rows):\n    return [x for row in rows for x in row]"),
    ("Write a Python function `count_vowels(text)`.",
     "def count_vowels(text):\n    return sum(ch in 'aeiou' for ch in text.lower())"),
    ("Write a Python function `clamp(x, lo, hi)` that limits x to the range lo..hi.",
     "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))"),
    ("Write a Python function `first_or_none(items)` that returns the first item or None.",
     "def first_or_none(items):\n    return items[0] if items else None"),
    ("Write a Python function `word_lengths(words)` that maps each word to its length.",
     "def word_lengths(words):\n    return {w: len(w) for w in words}"),
    ("Write a Python function `is_prime(n)`.",
     "def is_prime(n):\n    if n < 2:\n        return False\n"
     "    for d in range(2, int(n ** 0.5) + 1):\n"
     "        if n % d == 0:\n            return False\n    return True"),
    ("Write a JavaScript function `add(a, b)` that returns the sum of two numbers.",
     "function add(a, b) {\n  return a + b;\n}"),
    ("Write a JavaScript function `isEven(n)`.", "function isEven(n) {\n  return n % 2 === 0;\n}"),
    ("Write a Go function `Add(a, b int) int`.", "func Add(a, b int) int {\n\treturn a + b\n}"),
    ("Write a SQL query that selects every row of the table `users`.", "SELECT * FROM users;"),
    ("Write a SQL query that counts the rows of the table `orders`.",
     "SELECT COUNT(*) FROM orders;"),
]  # fmt: skip


def _first_sentence(doc: str) -> str | None:
    text = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
    if not text or "(" in text.split(" ")[0] or "->" in text:  # a signature line, not prose
        return None
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence if 12 <= len(sentence) <= 240 else None


def _docs() -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name in sorted(dir(builtins)):
        obj = getattr(builtins, name)
        if name.startswith("_") or name[0].isupper() or not callable(obj) or name in SITE:
            continue
        sentence = _first_sentence(obj.__doc__ or "")
        if sentence:
            pairs.append((f"In Python, what does the built-in `{name}` do?", sentence))
    for kind in TYPES:
        for name in sorted(dir(kind)):
            if name.startswith("_"):
                continue
            sentence = _first_sentence(getattr(kind, name).__doc__ or "")
            if sentence:
                question = f"What does the Python method `{kind.__name__}.{name}` do?"
                pairs.append((question, sentence))
    return pairs


def main() -> None:
    rows = [
        {"input": q, "output": a, "metadata": {"source": "guard", "part": part}}
        for part, pairs in (("python", _docs()), ("general", GENERAL), ("code", CODE))
        for q, a in pairs
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{OUT}: {len(rows)} items")


if __name__ == "__main__":
    main()
