"""Wall time per pipeline step for the demo (a cold run, then a warm all-cache-hit run).

Usage: python benchmarks/pipeline_steps.py [--repo DIR] [--config FILE] [--home DIR]
With no --repo, the bundled demo project is copied into a temp git repo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import commit_tree

ROOT = Path(__file__).resolve().parents[1]


def make_demo_repo(dest: Path) -> Path:
    """Copy examples/demo-project to dest and commit it with fixed dates."""
    shutil.copytree(ROOT / "examples" / "demo-project", dest)
    commit_tree(dest, "demo")
    return dest


def main() -> None:
    """Run the pipeline twice and print a per-step timing table for each run."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repo", type=Path)
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "demo-config.yaml")
    ap.add_argument("--home", type=Path, help="state dir (default: a fresh temp dir)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="guardian-bench-"))
    home = args.home or work / "home"
    os.environ["GUARDIAN_HOME"] = str(home)
    repo = args.repo or make_demo_repo(work / "demo-repo")

    from guardian import log
    from guardian.config.settings import load_config
    from guardian.config.skills import load_skills
    from guardian.engine.runner import Pipeline

    log.configure("warning", "json")
    cfg = load_config(args.config)
    skills = load_skills(cfg.skills_path)
    print(f"repo: {repo}\nstate: {home}\ncores: {os.cpu_count()}")
    for label in ("cold", "warm"):
        pipe = Pipeline(cfg, skills)
        t0 = time.perf_counter()
        outcome = pipe.run_once(repo)
        total = time.perf_counter() - t0
        pipe.close()
        print(f"\n{label} run {outcome.run_id}")
        print(f"{'skill':<14} {'step':<11} {'status':<7} {'seconds':>9}")
        for s in outcome.steps:
            print(f"{s.skill:<14} {s.step:<11} {s.status:<7} {s.seconds:9.2f}")
        print(f"{'total':<34} {total:9.2f}")
        if outcome.decision is not None:
            print(f"decision: {'PASS' if outcome.decision.passed else 'FAIL'}")
        if outcome.metrics:
            c, b = outcome.metrics["challenger"], outcome.metrics["baseline"]
            print(f"perplexity: base {b['perplexity']:.3f} -> challenger {c['perplexity']:.3f}")
    if not args.home:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
