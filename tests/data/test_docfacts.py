from __future__ import annotations

import inspect

import pytest

from guardian.core.schema import Chunk
from guardian.data.docfacts import (
    body_of,
    call_example,
    decorators,
    doc_section,
    import_line,
    module_name,
    parameters_text,
    section_text,
    summary_of,
    summary_quote,
)

GOOGLE = inspect.cleandoc(
    """
    Combine the event and run the chain.

    Call it to combine your *event* and *context*
    into an event_dict.

    Args:
        event: The event.

    Raises:
        DropEvent: if the entry should be dropped.

        ValueError:
            if the final processor returns junk.

    Returns:
         `tuple` of ``(*args, **kw)``

    .. versionchanged:: 14.0.0
        Allow a dict.
    """
)
NUMPY = inspect.cleandoc(
    """
    Solve it.

    Parameters
    ----------
    a : int
        The thing.

    Returns
    -------
    float
        The answer, rounded.

    Raises
    ------
    KeyError
        When missing.
    """
)
SPHINX = inspect.cleandoc(
    """
    Look up a key.

    :param key: what to find
    :returns: the stored value,
        or None when absent
    :rtype: str
    :raises KeyError: when the store is closed
    :raises ValueError: on an empty key
    """
)


def chunk(**overrides: object) -> Chunk:
    data: dict[str, object] = {
        "id": "c1",
        "repo": "demo",
        "commit": "deadbeef",
        "path": "pkg/maths.py",
        "language": "python",
        "kind": "function",
        "name": "add",
        "qualname": "add",
        "signature": "def add(a: int, b: int = 0, *rest: int, limit: int, **kw: str) -> int",
        "docstring": "Add.",
        "code": "def add(a, b=0, *rest, limit, **kw):\n    return a + b",
        "start_line": 1,
        "end_line": 2,
        "content_hash": "h",
    }
    data.update(overrides)
    return Chunk.model_validate(data)


def test_summary_forms_and_verbatim_quote() -> None:
    assert summary_of(GOOGLE) == ("Combine the event and run the chain.")
    multi = "Line one\ncontinues here.\n\nMore."
    assert summary_of(multi) == "Line one continues here."
    assert summary_quote(multi) == "Line one\ncontinues here."
    assert summary_quote(multi) in multi
    assert summary_of("Parse it.\nArgs:\n    x: thing") == "Parse it."
    assert summary_of(None) == summary_quote(None) == ""
    assert summary_of("Args:\n    x: thing") == ""


@pytest.mark.parametrize(
    ("doc", "which", "expected"),
    [
        (
            GOOGLE,
            "raises",
            "DropEvent: if the entry should be dropped.\n\n    ValueError:\n"
            "        if the final processor returns junk.",
        ),
        (GOOGLE, "returns", "`tuple` of ``(*args, **kw)``"),
        (NUMPY, "returns", "float\n    The answer, rounded."),
        (NUMPY, "raises", "KeyError\n    When missing."),
        (SPHINX, "returns", ":returns: the stored value,\n    or None when absent\n:rtype: str"),
        (
            SPHINX,
            "raises",
            ":raises KeyError: when the store is closed\n:raises ValueError: on an empty key",
        ),
        ("Return x.\n\nReturns: the x value\n    doubled.", "returns", "the x value\n    doubled."),
        ("Just prose. It returns things.", "returns", ""),
        (None, "raises", ""),
    ],
)
def test_doc_sections_are_verbatim_spans(doc: str | None, which: str, expected: str) -> None:
    block = doc_section(doc, which)  # type: ignore[arg-type]
    assert block == expected
    if doc:
        assert block in doc


def test_section_text_is_one_plain_line() -> None:
    assert section_text(doc_section(SPHINX, "raises")) == (
        "KeyError: when the store is closed ValueError: on an empty key"
    )
    assert section_text(doc_section(SPHINX, "returns")) == (
        "the stored value, or None when absent (type: str)"
    )
    assert section_text(doc_section(NUMPY, "returns")) == "float The answer, rounded."


def test_parameters_cover_every_kind_of_parameter() -> None:
    assert parameters_text(chunk()) == (
        "`a: int`, `b: int = 0`, `*rest: int`, `limit: int` and `**kw: str`"
    )
    assert parameters_text(chunk(signature="def f()")) == "no parameters"
    assert parameters_text(chunk(kind="class", signature="class A")) == ""
    assert parameters_text(chunk(language="go", signature="func f(a int)")) == ""
    assert parameters_text(chunk(signature="def broken(")) == ""


def test_self_and_cls_are_dropped_except_for_static_methods() -> None:
    method = chunk(kind="method", qualname="Cart.add", signature="def add(self, item: Item)")
    assert parameters_text(method) == "`item: Item`"
    static = chunk(
        kind="method",
        qualname="Cart.make",
        signature="def make(self_like, n)",
        code="@staticmethod\ndef make(self_like, n):\n    pass",
    )
    assert parameters_text(static) == "`self_like` and `n`"
    assert decorators(static) == ["staticmethod"]


def test_call_examples() -> None:
    assert call_example(chunk()) == "add(a, limit=limit)"
    method = chunk(
        kind="method",
        name="total",
        qualname="ShoppingCart.total",
        signature="def total(self, tax: float, *, rounding=2)",
        code="def total(self, tax, *, rounding=2):\n    pass",
    )
    assert call_example(method) == "shopping_cart.total(tax)"
    cls_method = method.model_copy(update={"code": "@classmethod\ndef total(cls): pass"})
    assert call_example(cls_method).startswith("ShoppingCart.total(")
    init = method.model_copy(update={"name": "__init__", "qualname": "ShoppingCart.__init__"})
    assert call_example(init) == "ShoppingCart(tax)"
    for code in ("@property\ndef total(self): pass", "@total.setter\ndef total(self, v): pass"):
        assert call_example(method.model_copy(update={"code": code})) == ""
    dunder = method.model_copy(update={"name": "__eq__", "qualname": "ShoppingCart.__eq__"})
    assert call_example(dunder) == ""
    assert call_example(chunk(name="__getattr__", qualname="__getattr__")) == ""
    assert call_example(chunk(qualname="outer.<locals>.add")) == ""


def test_import_line() -> None:
    assert import_line(chunk(), "pkg.maths") == "from pkg.maths import add"
    method = chunk(kind="method", qualname="Cart.add")
    assert import_line(method, "pkg.maths") == "from pkg.maths import Cart"
    assert import_line(chunk(), "my-pkg.maths") == ""
    assert import_line(chunk(qualname="f.<locals>.g"), "pkg") == ""
    assert import_line(chunk(language="go"), "pkg") == ""


def test_module_name() -> None:
    assert module_name("pkg/mod.py") == "pkg.mod"
    assert module_name("pkg/__init__.py") == "pkg"
    assert module_name("src/a/b/c.ts") == "src.a.b.c"


def test_body_of_undedented_method_and_other_languages() -> None:
    method = chunk(
        kind="method",
        code='@property\n    def total(self) -> int:\n        """Sum."""\n        return 3',
    )
    assert body_of(method) == "    return 3"
    assert body_of(chunk(language="javascript", code="function f() { return 1; }")) == ""
    assert body_of(chunk(code="def broken(:\n    pass")) == ""
    assert body_of(chunk(code="def f(x): return x + 1")) == "return x + 1"


def test_overview_states_every_fact_as_prose() -> None:
    from guardian.data.fields import overview

    unit = chunk(signature="def add(a: int, b: int = 0) -> int", code="def add(a, b=0):\n    x")
    text = overview(unit, "Add two numbers", ["total", "Cart.sum"])
    assert text == (
        "`add` is a function in `pkg/maths.py`. Add two numbers. It takes `a` and `b` and "
        "returns `int`. It is used by `Cart.sum` and `total`."
    )
    bare = chunk(signature="def ping()", code="def ping():\n    pass", name="ping", qualname="ping")
    assert overview(bare, "") == "`ping` is a function in `pkg/maths.py`."
