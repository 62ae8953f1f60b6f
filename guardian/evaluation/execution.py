"""Running generated code against the repo's own tests (RepoEval-style pass@1).

For a Python item whose function the repo's tests call, the repo at the evaluated commit is
unpacked into a scratch dir (`git archive`: the user's checkout is never touched), the
item's definition (its chunk's lines) is replaced by the generated one at the original
indentation, and `python -m pytest -x -q <its test files>` runs there in a session of its
own with the same interpreter, stdin closed, no proxy settings and a timeout after which
its whole process group is killed. The scratch dir is always removed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from contextlib import suppress
from pathlib import Path

from guardian.core.fsutil import scratch_dir, sweep_scratch
from guardian.core.gitutil import archive
from guardian.core.schema import AskItem
from guardian.evaluation.code import extract_code

__all__ = ["definition_of", "passes_tests"]

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEF_STARTS = ("def ", "async def ")
_DROPPED_ENV = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"})
_DROPPED_ENV_EXACT = frozenset({"PYTHONPATH", "PYTEST_ADDOPTS", "PYTHONSTARTUP"})


def _decorators(reference: str) -> list[str]:
    """The decorator lines above the def of the item's real code, stripped (a multi-line
    decorator's inner lines may sit at any depth inside its brackets)."""
    lines = reference.splitlines()
    at = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(_DEF_STARTS)), 0)
    head = [ln.strip() for ln in lines[:at] if ln.strip()]
    return head if head and head[0].startswith("@") else []


def _find_def(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next((n for n in ast.walk(tree) if isinstance(n, _DEFS) and n.name == name), None)


def definition_of(code: str, item: AskItem) -> str | None:
    """The generated code as it replaces the item's definition (dedented), or None when it
    does not parse. A method keeps only its own def; a function keeps the whole code
    (imports and helpers included); a bare body gets the item's signature. The original
    decorators are kept when the code has none."""
    code = textwrap.dedent(extract_code(code)).strip("\n")
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    node = _find_def(tree, item.name)
    if node is None:
        head = item.signature.strip().rstrip(":")
        code = f"{head}:\n{textwrap.indent(code, '    ')}"
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return None
        node = _find_def(tree, item.name)
        if node is None:
            return None
    lines = code.splitlines()
    if "." in item.qualname:
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        lines = textwrap.dedent("\n".join(lines[first - 1 : node.end_lineno])).splitlines()
    if not node.decorator_list:
        at = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(_DEF_STARTS)), 0)
        lines[at:at] = _decorators(item.reference)
    return "\n".join(lines)


def _swap(source: str, item: AskItem, unit: str) -> str | None:
    """The file with the item's lines replaced by `unit` at their indentation (None when the
    lines are not the item's definition: the file changed since it was mined)."""
    lines = source.splitlines(keepends=True)
    start, end = item.start_line, max(item.end_line, item.start_line)
    if end > len(lines) or not lines[start - 1].lstrip().startswith(("@", *_DEF_STARTS)):
        return None
    first = lines[start - 1]
    indent = first[: len(first) - len(first.lstrip())]
    body = textwrap.indent(unit, indent, lambda ln: bool(ln.strip()))
    return "".join(lines[: start - 1]) + body + "\n" + "".join(lines[end:])


def _environment(work: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in _DROPPED_ENV and k not in _DROPPED_ENV_EXACT
    }
    paths = [work, *([work / "src"] if (work / "src").is_dir() else [])]
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run_pytest(work: Path, tests: list[str], timeout: float) -> bool:
    """Whether pytest passes the test files in `work`; a timeout kills its group: False."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(work),
        start_new_session=True,
    )
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    with suppress(OSError):  # whatever it left running, or all of it after a timeout
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return code == 0


def _scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / f"guardian-exec-{os.getuid()}"


def passes_tests(
    repo: Path, commit: str, item: AskItem, code: str, *, timeout: float = 60.0
) -> bool | None:
    """Whether the repo's tests that exercise `item` pass with `code` (a whole answer or its
    code) in place of its definition at `commit`.

    None when it cannot be run: not Python, no tests, code that does not parse, a file that
    no longer holds the definition, or no pytest for this interpreter. A commit git cannot
    archive is a RepoError.
    """
    if item.language != "python" or not item.tests or item.end_line < item.start_line:
        return None
    if importlib.util.find_spec("pytest") is None:
        return None
    unit = definition_of(code, item)
    if unit is None:
        return None
    root = _scratch_root()
    sweep_scratch(root)
    work = scratch_dir(root, "exec")
    try:
        archive(repo, commit, work)
        target = work / item.path
        if not target.is_file():
            return None
        swapped = _swap(target.read_text(encoding="utf-8"), item, unit)
        if swapped is None:
            return None
        target.write_text(swapped, encoding="utf-8")
        return _run_pytest(work, item.tests, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
