"""The daemon/CLI config (config.yaml): where state lives, which skills file, which repos."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from guardian.core.schema import StrictModel
from guardian.core.yamlfile import load_model, read_yaml
from guardian.errors import ConfigError

DEFAULT_CONFIG_NAME = "config.yaml"


class LogConfig(StrictModel):
    """Log level and format; `auto` means JSON lines unless stderr is a TTY."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class OllamaConfig(StrictModel):
    """Where and as what a promoted model goes in Ollama (`promote.target: ollama`)."""

    host: str | None = None
    name: str = Field(default="{repo}", description="model name; {repo} and {skill} expand")
    quant: Literal["f16", "q8_0"] = "f16"
    timeout_seconds: float = Field(default=300.0, gt=0)


DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


class PromoteConfig(StrictModel):
    """Promotion target. `local` copies the model into models_dir and records the champion;
    `ollama` also exports it as a merged GGUF and tags it in Ollama."""

    target: Literal["local", "ollama", "none"] = "local"
    models_dir: str | None = None
    ollama: OllamaConfig = Field(default_factory=OllamaConfig)

    def ollama_host(self) -> str:
        """The Ollama server: $OLLAMA_HOST, else promote.ollama.host, else the local default."""
        return os.environ.get("OLLAMA_HOST") or self.ollama.host or DEFAULT_OLLAMA_HOST


class RepoConfig(StrictModel):
    """One watched repository and the playbook that keeps its model current.

    `branch` is the branch whose new commits trigger a run (default: the one checked out when
    the daemon starts); `remote` is fetched every `fetch_minutes` for a mirror.
    """

    path: str
    playbook: str = "retrain"
    branch: str | None = None
    remote: str | None = None
    fetch_minutes: float = Field(default=0, ge=0)


class DaemonConfig(StrictModel):
    """How `guardian run` watches, queues and stops."""

    watch: Literal["auto", "inotify", "poll"] = Field(
        default="auto", description="auto: inotify (watchdog), polling when watches run out"
    )
    poll_seconds: float = Field(default=10.0, gt=0)
    debounce_seconds: float = Field(default=1.0, ge=0)
    concurrency: int = Field(default=1, ge=1)
    grace_seconds: float = Field(
        default=120.0, gt=0, description="SIGTERM: how long the running step may take to stop"
    )
    retry_minutes: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 15.0, 60.0],
        description="backoff between promotion retries when the target is unreachable",
    )


class GuardianConfig(StrictModel):
    """Top-level config.yaml. Relative paths resolve against the file's own directory."""

    state_dir: str | None = None
    skills_file: str = "skills/skills.yaml"
    base_model: str = "smollm2-135m"
    default_playbook: str = "retrain"
    log: LogConfig = Field(default_factory=LogConfig)
    promote: PromoteConfig = Field(default_factory=PromoteConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    repos: list[RepoConfig] = Field(default_factory=list)
    source: Path | None = Field(default=None, exclude=True)

    @property
    def root(self) -> Path:
        """Directory that relative paths in this config resolve against."""
        return self.source.parent if self.source else Path.cwd()

    def resolve(self, value: str) -> Path:
        """Resolve a path from this config (expanding ~) against its directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.root / path)

    def repo_path(self, entry: RepoConfig) -> Path:
        """A configured repo's work tree, absolute and with symlinks resolved."""
        return self.resolve(entry.path).resolve()

    @property
    def home(self) -> Path:
        """The state dir: $GUARDIAN_HOME, else state_dir, else ~/.local/share/guardian."""
        env = os.environ.get("GUARDIAN_HOME")
        if env:
            return Path(env).expanduser().resolve()
        if self.state_dir:
            return self.resolve(self.state_dir).resolve()
        return (Path.home() / ".local" / "share" / "guardian").resolve()

    @property
    def skills_path(self) -> Path:
        """Absolute path of the skills file this config names."""
        return self.resolve(self.skills_file)

    @property
    def models_dir(self) -> Path:
        """Where the local promotion target keeps promoted models."""
        if self.promote.models_dir:
            return self.resolve(self.promote.models_dir)
        return self.home / "models"


def user_config_path() -> Path:
    """The per-user config file: $XDG_CONFIG_HOME/guardian/config.yaml (~/.config by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "guardian" / DEFAULT_CONFIG_NAME


def is_guardian_config(path: Path) -> bool:
    """Whether a config.yaml found in the working directory is ours rather than another tool's:
    a mapping naming at least one of our top-level fields (or empty). Unreadable YAML counts as
    ours, so its error is reported instead of silently ignored."""
    try:
        data = read_yaml(path)
    except ConfigError:
        return True
    if data is None:
        return True
    return isinstance(data, dict) and bool(set(map(str, data)) & set(GuardianConfig.model_fields))


def find_config(explicit: Path | None = None) -> Path | None:
    """The config file to use, first found: --config, $GUARDIAN_CONFIG, ./config.yaml when it
    is ours (another project's config.yaml is skipped), the user config file; None = defaults."""
    if explicit is not None:
        return explicit
    env = os.environ.get("GUARDIAN_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    if local.is_file() and is_guardian_config(local):
        return local
    user = user_config_path()
    return user if user.is_file() else None


def load_config(path: Path | None = None) -> GuardianConfig:
    """Load and validate config.yaml (or defaults when no file is found)."""
    found = find_config(path)
    if found is None:
        return GuardianConfig()
    cfg = load_model(found, GuardianConfig)
    cfg.source = found.resolve()
    return cfg
