"""Python mining: exact units for a realistic file, recovery from syntax errors, and agreement
with Python's own `ast` module over real stdlib packages."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import pytest

from guardian.mining import extract_units, languages, spec_for_path
from guardian.mining.core import Unit

PY = languages()["python"]

SAMPLE = '''"""Inventory management for the warehouse service."""

from __future__ import annotations

import functools
from dataclasses import dataclass

DEFAULT_LIMIT = 10


def retry(times: int = 3):
    """Retry the wrapped call up to `times` times."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for _ in range(times - 1):
                try:
                    return fn(*args, **kwargs)
                except OSError:
                    continue
            return fn(*args, **kwargs)

        return wrapper

    return decorator


@dataclass(frozen=True)
class Item:
    """A stocked item.

        Indented detail line.
    """

    sku: str
    qty: int = 0

    @property
    def in_stock(self) -> bool:
        """True when at least one unit is on hand."""
        return self.qty > 0

    @staticmethod
    def parse(line: str) -> Item:
        sku, _, qty = line.partition(",")
        return Item(sku.strip(), int(qty))

    class Meta:
        """Storage options."""

        table = "items"

        def describe(cls):
            return cls.table


class Warehouse(  # noqa: D101
    object,
    metaclass=type,
):
    def __init__(
        self,
        name: str,
        items: dict[str, Item] | None = None,  # by sku
        *,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.name = name
        self.items = items or {}
        self.limit = limit

    @retry(
        times=5,
    )
    async def restock(self, sku: str, qty: int = 1) -> Item:
        'Add `qty` units of `sku`, creating the item if needed.'
        current = self.items.get(sku, Item(sku))
        self.items[sku] = Item(sku, current.qty + qty)
        return self.items[sku]

    def report(self) -> list[str]:
        def fmt(item: Item, sep: str = ":  ") -> str:
            return f"{item.sku}{sep}{item.qty}"

        class Row:
            def render(self) -> str:
                return "row"

        return [fmt(i) for i in self.items.values()]
        # trailing comment is not part of the method


async def main(argv: tuple[str, ...] = ("--dry-run",)) -> int:
    """Entry point."""
    handler = lambda x: x  # noqa: E731  lambdas are not units
    return handler(0)
'''

EXPECTED = [
    (
        "function",
        "retry",
        11,
        26,
        "def retry(times: int = 3)",
        "Retry the wrapped call up to `times` times.",
    ),
    ("function", "retry.<locals>.decorator", 14, 24, "def decorator(fn)", None),
    (
        "function",
        "retry.<locals>.decorator.<locals>.wrapper",
        15,
        22,
        "def wrapper(*args, **kwargs)",
        None,
    ),
    ("class", "Item", 29, 55, "class Item", "A stocked item.\n\nIndented detail line."),
    (
        "method",
        "Item.in_stock",
        39,
        42,
        "def in_stock(self) -> bool",
        "True when at least one unit is on hand.",
    ),
    ("method", "Item.parse", 44, 47, "def parse(line: str) -> Item", None),
    ("class", "Item.Meta", 49, 55, "class Meta", "Storage options."),
    ("method", "Item.Meta.describe", 54, 55, "def describe(cls)", None),
    ("class", "Warehouse", 58, 90, "class Warehouse(object, metaclass=type)", None),
    (
        "method",
        "Warehouse.__init__",
        62,
        71,
        "def __init__(self, name: str, items: dict[str, Item] | None = None, *, "
        "limit: int = DEFAULT_LIMIT) -> None",
        None,
    ),
    (
        "method",
        "Warehouse.restock",
        73,
        80,
        "async def restock(self, sku: str, qty: int = 1) -> Item",
        "Add `qty` units of `sku`, creating the item if needed.",
    ),
    ("method", "Warehouse.report", 82, 90, "def report(self) -> list[str]", None),
    (
        "function",
        "Warehouse.report.<locals>.fmt",
        83,
        84,
        'def fmt(item: Item, sep: str = ":  ") -> str',
        None,
    ),
    ("class", "Warehouse.report.<locals>.Row", 86, 88, "class Row", None),
    ("method", "Warehouse.report.<locals>.Row.render", 87, 88, "def render(self) -> str", None),
    (
        "function",
        "main",
        94,
        97,
        'async def main(argv: tuple[str, ...] = ("--dry-run",)) -> int',
        "Entry point.",
    ),
]


def _table(units: list[Unit]) -> list[tuple[object, ...]]:
    return [(u.kind, u.qualname, u.start_line, u.end_line, u.signature, u.docstring) for u in units]


def _by_qualname(units: list[Unit]) -> dict[str, Unit]:
    return {u.qualname: u for u in units}


def test_sample_units_match_exactly() -> None:
    units = extract_units(SAMPLE.encode(), "inventory.py", PY)
    assert _table(units) == EXPECTED
    assert [u.name for u in units][:3] == ["retry", "decorator", "wrapper"]


def test_code_spans_decorators_is_dedented_and_parses_alone() -> None:
    units = _by_qualname(extract_units(SAMPLE.encode(), "inventory.py", PY))
    wrapper = units["retry.<locals>.decorator.<locals>.wrapper"].code
    assert wrapper.startswith("@functools.wraps(fn)\ndef wrapper(*args, **kwargs):\n    for _")
    restock = units["Warehouse.restock"].code
    assert restock.startswith("@retry(\n    times=5,\n)\nasync def restock(")
    assert restock.endswith("return self.items[sku]")
    assert units["Item"].code.startswith("@dataclass(frozen=True)\nclass Item:")
    report = units["Warehouse.report"].code
    assert "trailing comment" not in report
    assert report.endswith("return [fmt(i) for i in self.items.values()]")
    for unit in units.values():
        ast.parse(unit.code)
        lines = SAMPLE.splitlines()[unit.start_line - 1 : unit.end_line]
        assert len(unit.code.splitlines()) == len(lines)
        assert unit.code.splitlines()[-1].strip() == lines[-1].strip()


def test_code_keeps_source_when_inner_lines_are_less_indented() -> None:
    src = b'class A:\n    def f(self):\n        return """x\ny"""\n'
    (cls, meth) = extract_units(src, "a.py", PY)
    assert meth.code == 'def f(self):\n    return """x\ny"""'
    assert cls.code == src.decode().rstrip("\n")


BROKEN = """\
def good():
    return 1

def broken(a, b:
    return a +

class K:
    def m(self):
        pass

    def bad(self):
        x = (1,
    def after(self):
        return 2

@decorator(
    arg=1,
)
def tail():
    pass

class Last:
    def ok(self):
        return 3
"""


def test_syntax_error_keeps_valid_units_and_warns() -> None:
    warnings: list[str] = []
    units = extract_units(BROKEN.encode(), "pkg/broken.py", PY, warnings)
    assert [(u.qualname, u.start_line, u.end_line) for u in units] == [
        ("good", 1, 2),
        ("K.m", 8, 9),
        ("tail", 16, 20),
        ("Last", 22, 24),
        ("Last.ok", 23, 24),
    ]
    assert _by_qualname(units)["tail"].code.startswith("@decorator(\n    arg=1,\n)\ndef tail")
    assert warnings == ["pkg/broken.py:4: syntax error; kept 5 cleanly parsed units"]


def test_error_in_last_function_keeps_everything_before_it() -> None:
    src = SAMPLE + "\n\ndef oops(:\n    pass\n"
    warnings: list[str] = []
    units = extract_units(src.encode(), "x.py", PY, warnings)
    assert _table(units) == EXPECTED
    assert len(warnings) == 1 and warnings[0].startswith("x.py:100:")


@pytest.mark.parametrize(
    "src",
    [b"", b"# only a comment\n", b'"""Module docstring only."""\nX = 1\n', b")))(((\n"],
)
def test_files_without_units_yield_nothing(src: bytes) -> None:
    assert extract_units(src, "m.py", PY) == []


def test_crlf_and_bom_do_not_shift_lines() -> None:
    crlf = ("\ufeff" + SAMPLE.replace("\n", "\r\n")).encode()
    units = extract_units(crlf, "win.py", PY)
    assert [(u.qualname, u.start_line, u.end_line) for u in units] == [
        (e[1], e[2], e[3]) for e in EXPECTED
    ]


def test_registry_maps_python_paths_only() -> None:
    assert spec_for_path("src/pkg/mod.py") is PY
    assert spec_for_path("README.md") is None
    assert spec_for_path("stubs/mod.pyi") is None
    assert spec_for_path("Makefile") is None
    assert PY.name == "python" and ".py" in PY.extensions


def _ast_units(source: bytes) -> dict[tuple[str, int, int], str | None]:
    """(qualname, first-decorator line, end line) -> docstring, built from Python's own parser."""
    found: dict[tuple[str, int, int], str | None] = {}

    def walk(node: ast.AST, prefix: str, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not prefix:
                    qual = child.name
                elif in_function:
                    qual = f"{prefix}.<locals>.{child.name}"
                else:
                    qual = f"{prefix}.{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                assert child.end_lineno is not None
                found[(qual, start, child.end_lineno)] = ast.get_docstring(child)
                walk(child, qual, not isinstance(child, ast.ClassDef))
            else:
                walk(child, prefix, in_function)

    walk(ast.parse(source), "", False)
    return found


def _stdlib_sample() -> tuple[Path, list[Path]]:
    """A varied slice of the stdlib: packages with decorators, nested defs and async code."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p
        for pkg in ("json", "http", "email", "asyncio", "unittest")
        for p in (stdlib / pkg).rglob("*.py")
    )
    singles = ("dataclasses.py", "functools.py", "typing.py", "enum.py", "inspect.py")
    return stdlib, [p for p in files if "test" not in p.parts][:90] + [stdlib / n for n in singles]


def test_agrees_with_ast_on_stdlib_modules() -> None:
    """Same (path, qualname, start, end) set as `ast`, both ways, and the same docstrings.

    The whole-stdlib comparison is `benchmarks/mine_stdlib.py`; this is its fast sample.
    """
    stdlib, files = _stdlib_sample()
    assert len(files) >= 60, "stdlib sources not found"
    ours: set[tuple[str, str, int, int]] = set()
    theirs: set[tuple[str, str, int, int]] = set()
    docs_ours: dict[tuple[str, str, int, int], str | None] = {}
    docs_theirs: dict[tuple[str, str, int, int], str | None] = {}
    for path in files:
        rel = path.relative_to(stdlib).as_posix()
        source = path.read_bytes()
        for unit in extract_units(source, rel, PY):
            key = (rel, unit.qualname, unit.start_line, unit.end_line)
            ours.add(key)
            docs_ours[key] = unit.docstring
            ast.parse(unit.code)
        for (qual, start, end), doc in _ast_units(source).items():
            key = (rel, qual, start, end)
            theirs.add(key)
            docs_theirs[key] = doc
    assert len(theirs) > 3000
    both = ours & theirs
    assert len(both) >= 0.995 * len(theirs), sorted(theirs - ours)[:10]
    assert len(both) >= 0.995 * len(ours), sorted(ours - theirs)[:10]
    assert [k for k in both if docs_ours[k] != docs_theirs[k]] == []
