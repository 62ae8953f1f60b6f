"""Fail when a module of guardian/ passes 400 lines or a function passes 80 (DESIGN.md §2)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def problems(root: Path) -> list[str]:
    """One line per module or function over its limit, as `path:line: what`."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n_lines = len(text.splitlines())
        if n_lines > MAX_MODULE_LINES:
            found.append(f"{path}:1: module has {n_lines} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        f"{path}:{node.lineno}: {node.name}() has {length} lines "
                        f"(max {MAX_FUNCTION_LINES})"
                    )
    return found


def main() -> int:
    """Print every problem; exit 1 if there is any."""
    found = problems(Path(sys.argv[1] if len(sys.argv) > 1 else "guardian"))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
