"""The daemon tests use the engine tests' tiny base model and demo repository."""

from tests.engine.conftest import demo_repo, tiny_base

__all__ = ["demo_repo", "tiny_base"]
