"""`guardian models` and `guardian rollback NAME`: what is in service, and going back a step."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from guardian.cli.app import ConfigOpt, app, handled, line, setup

if TYPE_CHECKING:
    from guardian.store.records import ModelRecord

PRIMARY = ("probe_open", "probe", "exact_match", "perplexity")


def _where(model: ModelRecord) -> str:
    """Where a model lives: its Ollama tag and digest, and its local dir."""
    placement = model.placement
    if placement is not None and placement.target == "ollama":
        return f"ollama {placement.name}:{placement.tag} ({placement.digest[7:19]}) + {model.path}"
    return model.path


def _metric(metrics: dict[str, Any]) -> str:
    for key in PRIMARY:
        value = metrics.get(key)
        if isinstance(value, int | float):
            return f"{key}={value:.3g}"
    return "-"


@app.command()
@handled
def models(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per model")] = False,
    every: Annotated[bool, typer.Option("--all", help="retired models too")] = False,
) -> None:
    """Promoted models per repo and skill: status, run, primary metric and where they live."""
    from guardian.store.state import StateStore

    cfg = setup(config)
    with StateStore(cfg.home) as store:
        rows = store.registry.models()
    rows = [r for r in rows if every or r.status != "retired"]
    if not rows:
        line(f"{cfg.home}: no promoted models yet")
    for r in rows:
        if as_json:
            line(json.dumps(r.model_dump(mode="json"), sort_keys=True))
            continue
        forced = " (forced)" if r.override else ""
        line(
            f"{r.repo_name}/{r.skill}  {r.status:<9} run {r.run_id}  "
            f"{_metric(r.metrics)}{forced}  {r.promoted_at}  {_where(r)}"
        )


@app.command()
@handled
def rollback(
    name: Annotated[str, typer.Argument(help="a repo name, or the model's Ollama name")],
    config: ConfigOpt = None,
) -> None:
    """Put the previous model back in service (Ollama :latest <-> :prev, exact digests)."""
    from guardian.engine.publish import rollback as roll_back

    cfg = setup(config)
    model = roll_back(cfg, name)
    line(f"rolled back {name}: run {model.run_id} is in service again ({_where(model)})")
