"""RAFT vs plain template data: held-out answer perplexity after the same real training.

Usage: python benchmarks/raft_vs_plain.py [--home DIR] [--work DIR] [--package NAME]

Copies an installed third-party package (default: structlog) into a git repo, mines it once,
then builds two datasets from the same chunks with the default playbook's synthesize params
(skills/skills.yaml), once with `raft: false` and once with `raft: true` (same seed, so the
same files are held out). Each is validated and trained with the demo playbook's train params
(examples/demo-skills.yaml: 30 steps) on the real base model; both adapters and the untrained
base are then scored on both test splits (answer tokens only, the evaluate step's NLL code and
max_len), on the questions the two test splits share. The base is dequantised once into
--home and reused; steps finished in --work with the same params are reused too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from _common import commit_tree

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")


def make_repo(package: str, repo: Path) -> None:
    """Copy an installed package's .py files into a fresh git repo with one fixed commit."""
    module = importlib.import_module(package)
    src = Path(str(module.__file__)).parent
    for path in sorted(src.rglob("*.py")):
        dest = repo / package / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    commit_tree(repo, package)


def step_params(skills_file: Path) -> dict[str, dict[str, Any]]:
    """A skills file's params for each built-in step, by step name (first skill wins)."""
    doc = yaml.safe_load(skills_file.read_text())
    params: dict[str, dict[str, Any]] = {}
    for skill in doc["skills"].values():
        params.setdefault(skill["step"], dict(skill.get("params") or {}))
    return params


def step(module: Any, params: Any, work: Path, name: str, **inputs: Path) -> tuple[Path, Any]:
    """Run one step into work/name (reused when done with the same params); (dir, metrics)."""
    from guardian.steps.base import StepContext

    out = work / name
    done = out / ".done.json"
    wanted = params.model_dump(mode="json")
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("params") == wanted:
            return out, record["metrics"]
    shutil.rmtree(out, ignore_errors=True)
    home = Path(os.environ["GUARDIAN_HOME"])
    t0 = time.perf_counter()
    ctx = StepContext(repo=work / "repo", out_dir=out, home=home, inputs=inputs)
    result = module.run(ctx, params)
    metrics = {**result.metrics, "seconds": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps({"params": wanted, "metrics": metrics}))
    return out, metrics


def load_split(dataset: Path, split: str) -> list[Any]:
    from guardian.core.jsonl import read_jsonl
    from guardian.core.schema import Sample

    return list(read_jsonl(dataset / f"{split}.jsonl", Sample))


def key(sample: Any) -> tuple[str, str]:
    """Which question a sample asks: its unit and question type (shared by both datasets)."""
    return (str(sample.metadata["chunk_id"]), str(sample.metadata["question_type"]))


def score(models: dict[str, Path], sets: dict[str, list[Any]], params: Any) -> dict[str, Any]:
    """Answer perplexity of base and each adapter on each test set (one base load)."""
    import torch
    from peft import PeftModel

    from guardian.ml.base_model import base_of, load_model_and_tokenizer
    from guardian.ml.prompting import encode_example
    from guardian.ml.scoring import answer_nll

    home = Path(os.environ["GUARDIAN_HOME"])
    first = next(iter(models.values()))
    base, tok = load_model_and_tokenizer(base_of(first, home).path)
    names = list(models)
    model = PeftModel.from_pretrained(base, str(first / "adapter"), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(models[name] / "adapter"), adapter_name=name)
    model.eval()
    torch.manual_seed(params.seed)
    table: dict[str, Any] = {}
    for set_name, samples in sets.items():
        examples = [encode_example(tok, s, params.max_len) for s in samples]
        row: dict[str, Any] = {}
        for role in ["base", *names]:
            if role == "base":
                with model.disable_adapter():
                    nll = answer_nll(model, examples, params.batch_size, int(tok.pad_token_id))
            else:
                model.set_adapter(role)
                nll = answer_nll(model, examples, params.batch_size, int(tok.pad_token_id))
            tokens = sum(n for _, n in nll)
            row[role] = math.exp(sum(s for s, _ in nll) / tokens)
        row["n"] = len(samples)
        row["truncated"] = sum(1 for ex in examples if ex.truncated)
        table[set_name] = row
    return table


def main() -> None:
    """Build both datasets, train both, score both on both test splits, print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", type=Path, default=ROOT / "build" / "bench-home")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-raft-vs-plain")
    ap.add_argument("--package", default="structlog")
    ap.add_argument("--max-steps", type=int, default=None, help="override the demo's max_steps")
    args = ap.parse_args()
    os.environ["GUARDIAN_HOME"] = str(args.home.resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    from guardian import log
    from guardian.steps import evaluate, mine, synthesize, train, validate

    log.configure("warning", "json")
    work: Path = args.work
    if not (work / "repo" / ".git").is_dir():
        shutil.rmtree(work, ignore_errors=True)
        make_repo(args.package, work / "repo")
    demo = step_params(ROOT / "examples" / "demo-skills.yaml")
    default = step_params(ROOT / "skills" / "skills.yaml")
    train_raw = dict(demo["train"])
    if args.max_steps is not None:
        train_raw["max_steps"] = args.max_steps
    train_params = train.Params.model_validate(train_raw)
    eval_params = evaluate.Params.model_validate(demo["evaluate"])

    chunks, mined = step(mine, mine.Params.model_validate(demo["mine"]), work, "chunks")
    print(f"package: {args.package} ({mined['chunks']} chunks)  base: {train_params.base}")
    print(f"synthesize: {default['synthesize']} (raft toggled)\ntrain: {train_raw}\n")
    models: dict[str, Path] = {}
    tests: dict[str, list[Any]] = {}
    for mode in ("plain", "raft"):
        raw = {**default["synthesize"], "raft": mode == "raft"}
        data, synth = step(synthesize, synthesize.Params.model_validate(raw), work, f"{mode}-data",
                           chunks=chunks)  # fmt: skip
        clean, checked = step(validate, validate.Params.model_validate(demo.get("validate", {})),
                              work, f"{mode}-clean", dataset=data)  # fmt: skip
        model, trained = step(train, train_params, work, f"{mode}-model", dataset=clean)
        card = json.loads((clean / "card.json").read_text())
        tests[mode] = load_split(clean, "test")
        models[mode] = model
        print(
            f"{mode:<6} samples {sum(card['kept'].values()):>5} (train {card['kept']['train']}, "
            f"test {card['kept']['test']})  types {len(card['question_type_totals'])}  "
            f"oracle {card['oracle']['all']['fraction']}  ungrounded "
            f"{card['quotes']['ungrounded']}  leaks dropped {card['dropped']['leak']}  "
            f"train {trained['seconds']} s (loss {trained['train_loss_first']:.3f} -> "
            f"{trained['train_loss_last']:.3f})"
        )
    shared = {key(s) for s in tests["plain"]} & {key(s) for s in tests["raft"]}
    sets = {
        f"{mode} test": [s for s in tests[mode] if key(s) in shared] for mode in ("plain", "raft")
    }
    t0 = time.perf_counter()
    table = score(models, sets, eval_params)
    print(f"\nheld-out answer perplexity on the {len(shared)} test questions both splits share")
    print(f"(max_len {eval_params.max_len}; scored in {time.perf_counter() - t0:.0f} s)\n")
    print(f"{'test set':<11} {'n':>4} {'trunc':>5} {'base':>8} {'plain':>8} {'raft':>8}"
          f" {'plain vs base':>14} {'raft vs base':>13}")  # fmt: skip
    for name, row in table.items():
        gains = [f"{(1 - row[m] / row['base']) * 100:+.1f}%" for m in ("plain", "raft")]
        print(
            f"{name:<11} {row['n']:>4} {row['truncated']:>5} {row['base']:>8.3f} "
            f"{row['plain']:>8.3f} {row['raft']:>8.3f} {gains[0]:>14} {gains[1]:>13}"
        )
    (work / "results.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
