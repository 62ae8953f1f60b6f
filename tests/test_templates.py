from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guardian.errors import ConfigError
from guardian.records import Chunk
from guardian.templates import (
    FIELDS,
    Template,
    body_of,
    chunk_fields,
    load_template,
    load_templates,
    module_name,
    render,
    summary_of,
)

ROOT = Path(__file__).resolve().parents[1]

DOC = """Add two numbers, saturating at `limit`.

Used by the stock counter so totals never overflow
the display.

Args:
    a: First number.
    b: Second number.

Returns:
    The capped sum."""

CODE = '''@cache
def add(a: int, b: int = 0, limit: int = 100) -> int:
    """Add two numbers, saturating at `limit`.

    Used by the stock counter so totals never overflow
    the display.

    Args:
        a: First number.
        b: Second number.

    Returns:
        The capped sum.
    """
    # cap before returning
    total = a + b
    return min(total, limit)'''


def make_chunk(**overrides: object) -> Chunk:
    data: dict[str, object] = {
        "id": "c1",
        "repo": "demo",
        "commit": "deadbeef",
        "path": "pkg/maths.py",
        "language": "python",
        "kind": "function",
        "name": "add",
        "qualname": "add",
        "signature": "def add(a: int, b: int = 0, limit: int = 100) -> int",
        "docstring": DOC,
        "code": CODE,
        "start_line": 10,
        "end_line": 26,
        "content_hash": "h1",
    }
    data.update(overrides)
    return Chunk.model_validate(data)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def shipped() -> dict[str, Template]:
    return {t.question_type: t for t in load_templates(ROOT / "prompts")}


def test_shipped_templates_load_and_cover_the_required_question_types() -> None:
    templates = shipped()
    assert {"explain", "locate", "signature", "complete"} <= set(templates)
    for tpl in templates.values():
        assert tpl.fields_used() <= set(FIELDS)


def test_unknown_placeholder_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "explain.yaml", "question_type: explain\ninput: q\noutput: '{foo}'\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: output: unknown field 'foo'"


def test_attribute_access_placeholder_is_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "question_type: t\ninput: '{code.strip}'\noutput: x\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: input: unknown field 'code.strip'"


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "question_type: t\ninput: '{a}'\noutput: '{b}'\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: input: unknown field 'a' (and 1 more)"
    assert info.value.problems == [
        f"{path}: input: unknown field 'a'",
        f"{path}: output: unknown field 'b'",
    ]


def test_unknown_required_fact(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "question_type: t\nrequires: [tests]\ninput: q\noutput: a\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: requires: unknown field 'tests'"


def test_format_spec_and_unbalanced_braces_are_rejected(tmp_path: Path) -> None:
    spec = write(tmp_path, "a.yaml", "question_type: a\ninput: '{name!r}'\noutput: a\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: input: bad template \(placeholder"):
        load_template(spec)
    brace = write(tmp_path, "b.yaml", "question_type: b\ninput: q\noutput: 'x {name'\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: output: bad template \("):
        load_template(brace)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "question_type: [unclosed\ninput: x\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == (
        f"{path}: invalid YAML at line 2, column 6: expected ',' or ']', but got ':'"
    )


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "question_type: t\noutput: a\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: input: required field is missing"


def test_extra_key_and_bad_kind(tmp_path: Path) -> None:
    extra = write(tmp_path, "e.yaml", "question_type: e\ninput: q\noutput: a\nanswer: x\n")
    with pytest.raises(ConfigError) as info:
        load_template(extra)
    assert str(info.value) == f"{extra}: answer: unknown field"
    kind = write(tmp_path, "k.yaml", "question_type: k\nkinds: [module]\ninput: q\noutput: a\n")
    with pytest.raises(ConfigError, match=r"k\.yaml: kinds\.0: expected 'function'"):
        load_template(kind)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: expected a mapping at the top level"


def test_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="templates directory not found"):
        load_templates(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"no template files"):
        load_templates(tmp_path)
    write(tmp_path, "a.yaml", "question_type: same\ninput: q\noutput: a\n")
    second = write(tmp_path, "b.yml", "question_type: same\ninput: q\noutput: b\n")
    with pytest.raises(ConfigError) as info:
        load_templates(tmp_path)
    assert str(info.value).startswith(f"{second}: question_type 'same' already defined in ")


def test_module_name() -> None:
    assert module_name("pkg/mod.py") == "pkg.mod"
    assert module_name("pkg/__init__.py") == "pkg"
    assert module_name("src/a/b/c.ts") == "src.a.b.c"
    assert module_name("setup.py") == "setup"


def test_summary_is_first_paragraph_on_one_line() -> None:
    assert summary_of(DOC) == ("Add two numbers, saturating at `limit`.")
    assert summary_of("Line one\ncontinues here.\n\nMore.") == "Line one continues here."
    assert summary_of("Parse it.\nArgs:\n    x: thing") == "Parse it."
    assert summary_of(None) == ""
    assert summary_of("Args:\n    x: thing") == ""


def test_body_skips_decorators_signature_and_docstring() -> None:
    assert body_of(make_chunk()) == (
        "    # cap before returning\n    total = a + b\n    return min(total, limit)"
    )


def test_body_without_docstring_and_of_docstring_only_function() -> None:
    no_doc = make_chunk(code="def f(\n    x: int,\n) -> int:\n    return x * 2\n", docstring=None)
    assert body_of(no_doc) == "    return x * 2"
    only_doc = make_chunk(code='def f():\n    """Only a docstring."""\n')
    assert body_of(only_doc) == ""
    one_line = make_chunk(code="def f(x): return x + 1")
    assert body_of(one_line) == "return x + 1"


def test_body_of_undedented_method_and_other_languages() -> None:
    method = make_chunk(
        kind="method",
        code='@property\n    def total(self) -> int:\n        """Sum."""\n        return 3',
    )
    assert body_of(method) == "    return 3"
    assert body_of(make_chunk(language="javascript", code="function f() { return 1; }")) == ""
    assert body_of(make_chunk(code="def broken(:\n    pass")) == ""


def test_chunk_fields_are_all_strings_for_every_field() -> None:
    fields = chunk_fields(make_chunk())
    assert set(fields) == set(FIELDS)
    assert fields["module"] == "pkg.maths"
    assert fields["start_line"] == "10"


def test_explain_answer_is_grounded_in_the_docstring() -> None:
    chunk = make_chunk()
    sample = render(shipped()["explain"], chunk)
    assert sample is not None
    assert sample.input == "What does `pkg.maths.add` do?"
    summary = summary_of(chunk.docstring)
    assert summary in sample.output
    assert summary in " ".join((chunk.docstring or "").split())
    assert "Args" not in sample.output


def test_locate_answer_has_the_right_path_and_lines() -> None:
    sample = render(shipped()["locate"], make_chunk(kind="method", qualname="Acc.add"))
    assert sample is not None
    assert sample.input == "Where is `Acc.add` defined?"
    assert sample.output.startswith("`Acc.add` is a method defined in `pkg/maths.py` (lines 10-26)")


def test_signature_and_complete_reproduce_the_chunk_verbatim() -> None:
    chunk = make_chunk()
    sig = render(shipped()["signature"], chunk)
    assert sig is not None and chunk.signature in sig.output
    complete = render(shipped()["complete"], chunk)
    assert complete is not None
    assert chunk.code in complete.output
    assert chunk.signature in complete.input and chunk.code not in complete.input
    assert complete.instruction is not None and "`add`" in complete.instruction


def test_render_sets_provenance_metadata() -> None:
    sample = render(shipped()["locate"], make_chunk())
    assert sample is not None
    assert sample.metadata == {
        "chunk_id": "c1",
        "path": "pkg/maths.py",
        "commit": "deadbeef",
        "qualname": "add",
        "question_type": "locate",
    }


def test_render_skips_chunks_missing_required_facts() -> None:
    templates = shipped()
    undocumented = make_chunk(docstring=None)
    assert render(templates["explain"], undocumented) is None
    assert render(templates["complete"], undocumented) is None
    assert render(templates["locate"], undocumented) is not None
    assert render(templates["signature"], make_chunk(kind="class")) is None


def test_short_docstrings_count_as_missing() -> None:
    chunk = make_chunk(docstring="Adds.")
    explain = shipped()["explain"]
    assert render(explain, chunk, min_docstring_chars=10) is None
    assert render(explain, chunk, min_docstring_chars=5) is not None


def test_code_line_limits() -> None:
    templates = shipped()
    long_code = "def f():\n" + "    x = 1\n" * 80
    chunk = make_chunk(code=long_code)
    assert render(templates["complete"], chunk, max_code_lines=100) is None
    assert render(templates["locate"], chunk, max_code_lines=10) is not None
    short = make_chunk(code="def f():\n" + "    x = 1\n" * 20)
    assert render(templates["complete"], short, max_code_lines=10) is None
    assert render(templates["complete"], short, max_code_lines=30) is not None


def test_referenced_but_unrequired_field_still_gates(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "question_type: t\ninput: q\noutput: '{summary}'\n")
    tpl = load_template(path)
    assert render(tpl, make_chunk(docstring=None)) is None
    sample = render(tpl, make_chunk())
    assert sample is not None and sample.instruction is None
