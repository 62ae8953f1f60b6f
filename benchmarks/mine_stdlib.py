"""Mining the CPython stdlib: speed against `ast`, incremental re-mine, memory, ast agreement.

Usage: python benchmarks/mine_stdlib.py [--stdlib DIR] [--workdir DIR]

Copies every `.py` file of the stdlib (site-packages excluded) into a fresh git repo, then
prints, in one run on the same files:
  1. the baseline: `ast.parse` + a walk for defs/classes over every file (one process);
  2. a full cold mine (the `mine` step, fresh cache, pool over all cores), in a child process
     whose process tree's peak RSS (main + pool workers, summed) is sampled every 20 ms, and
     the same mine in one process (workers=1);
  3. a warm re-mine with nothing changed, and an incremental re-mine after changing one file;
  4. agreement of (path, qualname, start, end) with `ast` both ways, with every miss.
Timings are wall-clock on a possibly shared machine; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import commit_tree, git  # noqa: E402


def copy_stdlib(stdlib: Path, dest: Path) -> list[str]:
    """Copy the stdlib's .py files into `dest`, commit them, return their relative paths."""
    paths = sorted(
        p.relative_to(stdlib).as_posix()
        for p in stdlib.rglob("*.py")
        if "site-packages" not in p.parts and p.is_file() and not p.is_symlink()
    )
    for rel in paths:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stdlib / rel, dest / rel)
    commit_tree(dest, "stdlib")
    git(dest, "gc", "-q")
    return paths


def ast_units(source: bytes) -> set[tuple[str, int, int]]:
    """(qualname, first-decorator line, end line) of every def/class, from Python's parser."""
    found: set[tuple[str, int, int]] = set()

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
                found.add((qual, start, child.end_lineno or child.lineno))
                walk(child, qual, not isinstance(child, ast.ClassDef))
            else:
                walk(child, prefix, in_function)

    walk(ast.parse(source), "", False)
    return found


def baseline(repo: Path, paths: list[str]) -> tuple[float, float, int, int]:
    """ast.parse + walk over every file: (wall seconds, CPU seconds, units, syntax errors)."""
    start, cpu = time.perf_counter(), time.process_time()
    units = errors = 0
    for rel in paths:
        try:
            tree = ast.parse((repo / rel).read_bytes())
        except SyntaxError:
            errors += 1
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                units += 1
    return time.perf_counter() - start, time.process_time() - cpu, units, errors


def child_mine(repo: Path, home: Path, out: Path, params: dict[str, object]) -> None:
    """Child-process entry: run the mine step once and print its wall time and metrics."""
    import logging

    import structlog

    from guardian.steps.base import StepContext
    from guardian.steps.mine import Params, run

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    start = time.perf_counter()
    result = run(StepContext(repo=repo, out_dir=out, home=home), Params.model_validate(params))
    seconds = time.perf_counter() - start
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    print(json.dumps({"seconds": seconds, "cpu": cpu, "metrics": result.metrics}))


def mine_in_child(
    repo: Path, home: Path, out: Path, **params: object
) -> tuple[dict[str, Any], float]:
    """Run `child_mine` in a subprocess; returns its report and the tree's peak summed RSS (MB)."""
    import psutil

    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", str(repo), str(home), str(out), json.dumps(params)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"mine child failed with exit code {proc.returncode}")
    return json.loads(stdout.strip().splitlines()[-1]), peak / 2**20


def agreement(repo: Path, paths: list[str]) -> None:
    """Print how far our Python units and ast's agree, both ways, and list the misses."""
    from guardian.mining import extract_units, languages

    spec = languages()["python"]
    ours: set[tuple[str, str, int, int]] = set()
    theirs: set[tuple[str, str, int, int]] = set()
    skipped = 0
    for rel in paths:
        source = (repo / rel).read_bytes()
        try:
            expected = ast_units(source)
        except SyntaxError:
            skipped += 1
            continue
        theirs |= {(rel, *unit) for unit in expected}
        ours |= {
            (rel, u.qualname, u.start_line, u.end_line)
            for u in extract_units(source, rel, spec, [])
        }
    both = ours & theirs
    print(
        f"ast agreement over {len(paths) - skipped} files ({skipped} are invalid for ast, skipped)"
    )
    print(f"  ast units found by us:   {len(both)}/{len(theirs)} = {len(both) / len(theirs):.4%}")
    print(f"  our units confirmed by ast: {len(both)}/{len(ours)} = {len(both) / len(ours):.4%}")
    for label, missing in (
        ("missed (ast only)", theirs - ours),
        ("extra (ours only)", ours - theirs),
    ):
        by_file = Counter(key[0] for key in missing)
        print(f"  {label}: {len(missing)} in {len(by_file)} files")
        for rel, n in by_file.most_common(10):
            warnings: list[str] = []
            extract_units((repo / rel).read_bytes(), rel, spec, warnings)
            print(f"    {rel}: {n}  ({warnings[0] if warnings else 'no syntax error reported'})")


def main() -> None:
    """Build the stdlib repo and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="guardian-bench-"))
    repo, home = work / "stdlib", work / "home"
    for stale in (repo, home, work / "home-serial"):
        shutil.rmtree(stale, ignore_errors=True)
    repo.mkdir(parents=True)
    paths = copy_stdlib(args.stdlib, repo)
    lines = sum((repo / p).read_bytes().count(b"\n") for p in paths)
    size = sum((repo / p).stat().st_size for p in paths)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, stdlib {args.stdlib}")
    print(f"corpus: {len(paths)} files, {lines} lines, {size / 2**20:.1f} MiB")

    load = os.getloadavg()[0]
    seconds, cpu, units, errors = baseline(repo, paths)
    print(f"\nbaseline ast.parse+walk: {seconds:.2f} s wall, {cpu:.2f} s CPU, one process")
    print(f"  ({units} defs/classes, {errors} files invalid);  load average before: {load:.2f}")

    load = os.getloadavg()[0]
    cold, peak = mine_in_child(repo, home, work / "out-cold")
    ratio = cold["seconds"] / seconds
    print(f"full mine (cold cache): {cold['seconds']:.2f} s wall = {ratio:.2f}x ast wall")
    print(f"  {cold['cpu']:.2f} s CPU over main + pool workers = {cold['cpu'] / cpu:.2f}x ast CPU")
    print(
        f"  peak RSS, main + pool workers summed: {peak:.0f} MB;  load average before: {load:.2f}"
    )
    print(f"  metrics: {json.dumps(cold['metrics'], sort_keys=True)}")

    load = os.getloadavg()[0]
    serial, _ = mine_in_child(repo, work / "home-serial", work / "out-serial", workers=1)
    print(
        f"full mine, one process (workers=1): {serial['seconds']:.2f} s wall = "
        f"{serial['seconds'] / seconds:.2f}x ast;  load average before: {load:.2f}"
    )
    warm, _ = mine_in_child(repo, home, work / "out-warm")
    print(f"re-mine, nothing changed: {warm['seconds']:.2f} s")
    target = repo / "json" / "decoder.py"
    target.write_text(target.read_text() + "\n\ndef _bench_added(x):\n    return x\n")
    git(repo, "commit", "-qam", "touch one file")
    incr, _ = mine_in_child(repo, home, work / "out-incr")
    m = incr["metrics"]
    print(
        f"re-mine after changing 1 file: {incr['seconds']:.2f} s "
        f"(parsed {m['files_parsed']}, reused {m['files_reused']}, chunks {m['chunks']})"
    )
    print()
    agreement(repo, paths)
    print(f"\nwork dir: {work}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child_mine(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), json.loads(sys.argv[5]))
    else:
        main()
