from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guardian.core.schema import Chunk
from guardian.data.templates import (
    FIELDS,
    MODULE_FIELDS,
    Template,
    chunk_fields,
    fill,
    load_template,
    load_templates,
    module_fields,
    render,
    summary_of,
)
from guardian.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

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
    assert {"explain", "locate", "signature", "usage", "complete", "module"} <= set(templates)
    for tpl in templates.values():
        known = FIELDS if tpl.scope == "chunk" else MODULE_FIELDS
        assert tpl.fields_used() <= set(known)
        assert tpl.cot is not None and tpl.answer is not None, tpl.question_type
    assert templates["module"].scope == "module"


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
    extra = write(tmp_path, "e.yaml", "question_type: e\ninput: q\noutput: a\nreply: x\n")
    with pytest.raises(ConfigError) as info:
        load_template(extra)
    assert str(info.value) == f"{extra}: reply: unknown field"
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


def test_chunk_fields_are_all_strings_for_every_field() -> None:
    fields = chunk_fields(make_chunk())
    assert set(fields) == set(FIELDS)
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["module"] == "pkg.maths"
    assert fields["start_line"] == "10"
    assert fields["location"] == "pkg/maths.py:10-26"
    assert fields["returns_quote"] == "The capped sum."
    assert fields["parameters"] == "`a: int`, `b: int = 0` and `limit: int = 100`"
    assert fields["call"] == "add(a)"
    assert fields["import_line"] == "from pkg.maths import add"


def test_chunk_fields_only_computes_what_is_asked() -> None:
    assert chunk_fields(make_chunk(), {"name", "path"}) == {"name": "add", "path": "pkg/maths.py"}
    short = chunk_fields(make_chunk(docstring="Adds."), min_docstring_chars=10)
    assert short["docstring"] == short["summary"] == short["summary_quote"] == ""


def test_explain_answer_is_grounded_in_the_docstring() -> None:
    chunk = make_chunk()
    sample = render(shipped()["explain"], chunk)
    assert sample is not None
    assert sample.input == "What does `pkg.maths.add` do?"
    summary = summary_of(chunk.docstring)
    assert summary in sample.output
    assert summary in " ".join((chunk.docstring or "").split())
    assert "Args" not in sample.output


def test_locate_asks_for_the_unit_by_its_summary() -> None:
    sample = render(shipped()["locate"], make_chunk(kind="method", qualname="Acc.add"))
    assert sample is not None
    assert sample.input == (
        'Which method in this codebase is described as "Add two numbers, saturating at '
        '`limit`.", and in which file is it?'
    )
    assert sample.output == "`Acc.add` in `pkg/maths.py` (module `pkg.maths`, lines 10-26)."


def test_where_answer_has_the_right_path_and_lines() -> None:
    sample = render(shipped()["where"], make_chunk(kind="method", qualname="Acc.add"))
    assert sample is not None
    assert sample.input == "Where is `pkg.maths.Acc.add` defined?"
    assert sample.output == "`Acc.add` is a method defined in `pkg/maths.py`."


def test_signature_usage_and_complete() -> None:
    chunk = make_chunk()
    sig = render(shipped()["signature"], chunk)
    assert sig is not None and chunk.signature in sig.output
    assert "`a: int`, `b: int = 0` and `limit: int = 100`" in sig.output
    usage = render(shipped()["usage"], chunk)
    assert usage is not None
    assert usage.output == "Import it with `from pkg.maths import add` and call it as `add(a)`."
    complete = render(shipped()["complete"], chunk)
    assert complete is not None
    body = "    # cap before returning\n    total = a + b\n    return min(total, limit)"
    assert complete.output == f"```python\n{body}\n```"
    assert chunk.signature in complete.input and body not in complete.input
    assert complete.instruction is not None and "`add`" in complete.instruction


def test_fill_gives_the_raft_reasoning_and_answer() -> None:
    tpl = shipped()["explain_returns"]
    fields = chunk_fields(make_chunk())
    filled = fill(tpl, fields)
    assert filled is not None
    assert filled.question == "What does `pkg.maths.add` return?"
    assert filled.cot is not None
    assert "##begin_quote##The capped sum.##end_quote##" in filled.cot
    assert filled.answer == "The capped sum."
    plain = Template(question_type="t", input="q {name}", output="a {name}")
    filled_plain = fill(plain, fields)
    assert filled_plain is not None and filled_plain.cot is None
    assert filled_plain.answer == filled_plain.output == "a add"


def test_module_fields_outline_and_members() -> None:
    members = [
        make_chunk(qualname="add", start_line=10),
        make_chunk(qualname="Acc", name="Acc", kind="class", signature="class Acc", start_line=1),
        make_chunk(qualname="Acc.get", kind="method", signature="def get(self)", start_line=2),
    ]
    facts = module_fields("pkg/maths.py", members)
    assert set(facts) == set(MODULE_FIELDS)
    assert facts["outline"] == "class Acc\ndef add(a: int, b: int = 0, limit: int = 100) -> int"
    assert facts["members"] == "`Acc` (class) and `add` (function)"
    assert module_fields("pkg/maths.py", members[2:])["outline"] == ""
    assert module_fields("pkg/maths.py", members[2:])["members"] == ""
    capped = module_fields("pkg/maths.py", members, max_members=1)
    assert capped["outline"] == "class Acc"
    assert capped["members"] == "`Acc` (class) and 1 more definitions"
    sample = fill(shipped()["module"], facts)
    assert sample is not None
    assert (
        sample.output
        == "Module `pkg.maths` (`pkg/maths.py`) defines `Acc` (class) and `add` (function)."
    )


def test_render_sets_provenance_metadata() -> None:
    sample = render(shipped()["where"], make_chunk())
    assert sample is not None
    assert sample.metadata == {
        "chunk_id": "c1",
        "path": "pkg/maths.py",
        "commit": "deadbeef",
        "qualname": "add",
        "question_type": "where",
    }
    assert render(shipped()["module"], make_chunk()) is None


def test_render_skips_chunks_missing_required_facts() -> None:
    templates = shipped()
    undocumented = make_chunk(docstring=None)
    assert render(templates["explain"], undocumented) is None
    assert render(templates["complete"], undocumented) is None
    assert render(templates["explain_raises"], make_chunk()) is None
    assert render(templates["where"], undocumented) is not None
    assert render(templates["signature"], make_chunk(kind="class")) is None


def test_short_docstrings_count_as_missing() -> None:
    chunk = make_chunk(docstring="Adds.")
    explain = shipped()["explain"]
    assert render(explain, chunk, min_docstring_chars=10) is None
    assert render(explain, chunk, min_docstring_chars=5) is not None


def test_code_line_limits() -> None:
    templates = shipped()
    long_code = 'def f():\n    """Doc."""\n' + "    x = 1\n" * 80
    chunk = make_chunk(code=long_code)
    assert render(templates["complete"], chunk, max_code_lines=100) is None
    assert render(templates["where"], chunk, max_code_lines=10) is not None
    short = make_chunk(code='def f():\n    """Doc."""\n' + "    x = 1\n" * 20)
    assert render(templates["complete"], short, max_code_lines=10) is None
    assert render(templates["complete"], short, max_code_lines=30) is not None


def test_referenced_but_unrequired_field_still_gates(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "question_type: t\ninput: q\noutput: '{summary}'\n")
    tpl = load_template(path)
    assert render(tpl, make_chunk(docstring=None)) is None
    sample = render(tpl, make_chunk())
    assert sample is not None and sample.instruction is None


def test_cot_needs_balanced_quote_markers(tmp_path: Path) -> None:
    base = "question_type: t\ninput: q\noutput: a\n"
    none = write(tmp_path, "a.yaml", base + "cot: 'no quote'\n")
    with pytest.raises(ConfigError) as info:
        load_template(none)
    assert str(info.value) == (
        f"{none}: cot: needs balanced ##begin_quote## ... ##end_quote## pairs (found 0 and 0)"
    )
    open_only = write(tmp_path, "b.yaml", base + "cot: '##begin_quote##{name}'\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: cot: needs balanced .* \(found 1 and 0\)"):
        load_template(open_only)
    answer_alone = write(tmp_path, "c.yaml", base + "answer: x\n")
    with pytest.raises(ConfigError) as info:
        load_template(answer_alone)
    assert str(info.value) == f"{answer_alone}: answer: only allowed together with cot"


def test_module_scope_fields_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        "question_type: m\nscope: module\ninput: '{module}'\noutput: '{signature}'\n",
    )
    with pytest.raises(ConfigError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: output: unknown field 'signature'"
