"""Does the promoted model know the repo? Runs a playbook, prints the knowledge-probe table.

    python benchmarks/knowledge_probe.py [--repo DIR] [--config FILE] [--playbook NAME]

Default: the demo project with the demo config (what `make demo` runs). For a real package,
copy its source to a folder (it is committed as a git repo with a fixed identity) and pass
`--config skills-config.yaml` with the default playbook. Prints, for challenger and baseline,
accuracy per question kind and mode (closed-book / open-book), the seen/unseen split, the
retrieval recall@k, and the gate decision.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import commit_tree  # noqa: E402


def _table(probe: dict[str, Any]) -> list[str]:
    kinds = sorted(probe["challenger"]["open"]["by_kind"])
    head = f"{'kind':<10}" + "".join(f"{r[:5] + ' ' + m:>14}" for r in ("challenger", "baseline")
                                      for m in ("closed", "open"))  # fmt: skip
    lines = [head]
    for kind in [*kinds, "ALL", "seen", "unseen"]:
        cells = []
        for role in ("challenger", "baseline"):
            for mode in ("closed", "open"):
                row = probe[role][mode]
                value = (
                    row["accuracy"] if kind == "ALL"
                    else row[kind] if kind in ("seen", "unseen")
                    else row["by_kind"].get(kind)
                )  # fmt: skip
                cells.append("-" if value is None else f"{value:.2f}")
        lines.append(f"{kind:<10}" + "".join(f"{c:>14}" for c in cells))
    recall = probe["challenger"].get("retrieval_recall")
    lines.append(f"retrieval recall@k: {recall}  by kind: "
                 f"{probe['challenger'].get('retrieval_recall_by_kind')}")  # fmt: skip
    seen = probe["challenger"]["closed"]
    lines.append(f"items: {probe['challenger']['n']} ({seen['n_seen']} seen, "
                 f"{seen['n_unseen']} unseen)")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "examples" / "demo-project")
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "demo-config.yaml")
    parser.add_argument("--playbook", default=None)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-knowledge")
    args = parser.parse_args()

    from guardian import log
    from guardian.config.settings import load_config
    from guardian.engine.runner import Pipeline
    from guardian.steps import load_skills

    repo = args.work / args.repo.name
    if not (repo / ".git").is_dir():
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(args.repo, repo, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        commit_tree(repo, "knowledge benchmark")
    cfg = load_config(args.config)
    log.configure("info", "auto")
    pipe = Pipeline(cfg, load_skills(cfg.skills_path))
    t0 = time.monotonic()
    try:
        result = pipe.run_once(repo, args.playbook)
    finally:
        pipe.close()
    seconds = time.monotonic() - t0
    evaluate = next(s for s in result.steps if s.step == "evaluate")
    assert evaluate.path is not None
    metrics = json.loads((evaluate.path / "metrics.json").read_text())
    print(f"repo {args.repo} playbook {result.playbook} run {result.run_id}: {seconds:.0f} s")
    for s in result.steps:
        print(f"  {s.skill:<14} {s.status:<8} {s.seconds:8.1f} s")
    print(f"baseline: {metrics['baseline']['model']} ({metrics['baseline_kind']})")
    print("\n".join(_table(metrics["probe"])))
    for role in ("challenger", "baseline"):
        print(f"{role} perplexity {metrics[role]['perplexity']:.3f}")
    if result.decision is not None:
        print("decision:", "PASS" if result.decision.passed else "FAIL")
        for reason in result.decision.reasons:
            print("  ", reason)


if __name__ == "__main__":
    main()
