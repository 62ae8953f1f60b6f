"""Code-writing metrics: real tree-sitter parses and real CodeBLEU scores."""

from __future__ import annotations

import logging
import sys

import pytest

from guardian.evaluation.code import as_unit, code_bleu, code_scores, extract_code, syntax_valid

PY_ADD = "def add(a, b):\n    c = a + b\n    return c\n"
JS_ADD = "function add(a, b) {\n  const c = a + b;\n  return c;\n}\n"
GO_ADD = "func add(a int, b int) int {\n\tc := a + b\n\treturn c\n}\n"


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", PY_ADD),
        ("javascript", JS_ADD),
        ("go", "package main\n\n" + GO_ADD),
        ("typescript", "const total: number = add(1, 2);\n"),
    ],
)
def test_valid_code_parses(language: str, code: str) -> None:
    assert syntax_valid(code, language) is True


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "print(1"),  # an ERROR node
        ("python", "def f(:\n    pass\n"),  # only a MISSING ")"
        ("javascript", "const x = ;"),
        ("javascript", "function f() { return 1 "),  # MISSING "}"
        ("go", "func f() int { return 1 "),
        ("typescript", "let y: = 2;"),
    ],
)
def test_broken_code_does_not_parse(language: str, code: str) -> None:
    assert syntax_valid(code, language) is False


def test_syntax_blank_code_is_not_valid_and_unknown_language_is_none() -> None:
    assert syntax_valid("  \n", "python") is False
    assert syntax_valid(PY_ADD, "cobol") is None


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("Here it is:\n```python\nx = 1\n```\nand more ```y = 2```", "x = 1"),
        ("```\nreturn 2\n```", "return 2"),
        ("Use ```y = f(2)``` here", "y = f(2)"),  # an inline fence has no info string
        ("Sure:\n```go\nfunc f() {\n", "func f() {"),  # a truncated answer: unclosed fence
        ("##begin_quote## a ##end_quote##\n<ANSWER>: x = f(1)  ", "x = f(1)"),
        ("<ANSWER>: skip\n<ANSWER>: ```js\nlet a = 1;\n```", "let a = 1;"),
        # A fence quoted before the answer tag is evidence, not the answer.
        ("##begin_quote## ```py\nold()\n``` ##end_quote## <ANSWER>: new()", "new()"),
        ("  def f():\n    pass\n\n", "def f():\n    pass"),
    ],
)
def test_extract_code(answer: str, code: str) -> None:
    assert extract_code(answer) == code


@pytest.mark.parametrize(
    ("language", "reference", "unrelated"),
    [
        ("python", PY_ADD, "class Foo:\n    pass\n"),
        ("javascript", JS_ADD, "let s = 'hello';\nconsole.log(s);\n"),
        ("go", GO_ADD, 'import "fmt"\n\nfunc main() { fmt.Println("hi") }\n'),
    ],
)
def test_codebleu_identical_is_one_and_unrelated_far_less(
    language: str, reference: str, unrelated: str
) -> None:
    # Identical: every n-gram, subtree and data-flow edge matches, so all four parts are 1.
    assert code_bleu(reference, reference, language) == pytest.approx(1.0, abs=1e-9)
    # Unrelated: (almost) no shared tokens, subtrees or flows; codebleu's own combined score
    # would add 0.25 for a zero data-flow match, which must not happen here.
    score = code_bleu(unrelated, reference, language)
    assert score is not None and score < 0.15


def test_codebleu_python_unrelated_shares_nothing() -> None:
    # No common token (BLEU 0), no common subtree with children, no data-flow: exactly 0.
    assert code_bleu("class Foo:\n    pass\n", PY_ADD, "python") == pytest.approx(0.0, abs=1e-9)


def test_codebleu_renamed_variables_keep_syntax_and_dataflow() -> None:
    # Same tree shape (syntax 1) and same flows once names are normalised (data-flow 1), but
    # the tokens differ: at least 0.5 from those two parts, below 1 from the n-gram parts.
    renamed = "def add(x, y):\n    z = x + y\n    return z\n"
    score = code_bleu(renamed, PY_ADD, "python")
    assert score is not None and 0.5 <= score < 0.9


def test_codebleu_reference_without_dataflow_drops_that_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    imports = "import os\nimport sys\nimport json\nimport re\n"
    with caplog.at_level(logging.WARNING):
        # Without dropping the undefined data-flow part this would be 0.75.
        assert code_bleu(imports, imports, "python") == pytest.approx(1.0, abs=1e-9)
    assert not [r for r in caplog.records if "data-flows" in r.getMessage()]


def test_codebleu_unavailable_cases_are_none() -> None:
    assert code_bleu("let a = 1;", "let a = 1;", "typescript") is None  # no codebleu support
    assert code_bleu(PY_ADD, PY_ADD, "cobol") is None
    assert code_bleu(PY_ADD, "  \n", "python") is None
    assert code_bleu("", PY_ADD, "python") == pytest.approx(0.0, abs=1e-9)


def test_codebleu_without_the_package_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codebleu", None)  # makes `import codebleu` fail
    assert code_bleu(PY_ADD, JS_ADD, "python") is None


def test_a_body_is_checked_inside_its_signature() -> None:
    body = "    total = a + b\n    return total"
    assert as_unit(body, "def add(a, b)", "python") == f"def add(a, b):\n{body}"
    assert syntax_valid(as_unit(body, "def add(a, b):", "python"), "python")
    assert not syntax_valid(as_unit("    return (a +", "def add(a, b)", "python"), "python")
    assert syntax_valid(
        as_unit("  return a + b;", "function add(a, b)", "javascript"), "javascript"
    )
    assert syntax_valid(as_unit("\treturn a + b", "func add(a, b int) int", "go"), "go")
    assert not syntax_valid(as_unit("\treturn a +", "func add(a, b int) int", "go"), "go")


def test_code_scores_read_the_code_out_of_a_tagged_answer() -> None:
    ref = "<ANSWER>: ```python\n    return read_products(io.StringIO(text))\n```"
    same = code_scores(ref, ref, "def f(text: str)", "python")
    assert same == {"codebleu": 1.0, "syntax_valid": True}
    empty = code_scores("I do not know.", ref, "def f(text: str)", "python")
    assert empty["syntax_valid"] is False
    assert empty["codebleu"] is not None and empty["codebleu"] < 0.3
    assert code_scores("x", ref, "fn f()", "rust") == {"codebleu": None, "syntax_valid": None}
    whole = "```python\ndef f(text: str):\n    return text.upper()\n```"
    assert code_scores(whole, ref, "def f(text: str)", "python")["syntax_valid"] is True
    broken = "```python\ndef f(text: str):\n    return (text\n```"
    assert code_scores(broken, ref, "def f(text: str)", "python")["syntax_valid"] is False
