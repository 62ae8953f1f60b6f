"""The `ollama` promotion target, through the official `ollama` client (its only importer).

Current Ollama refuses LoRA adapters at create and cannot quantize a GGUF there, so a model
arrives as one merged GGUF (guardian/export/gguf.py): the blob is uploaded (its digest
checked against the file's own sha256), created as `<name>:<run>` with the chat template,
system prompt and stop parameters the model was trained with, verified with `show` and one
smoke prompt, then tagged `<name>:latest` after the old latest was copied to `<name>:prev`.
Any failure puts every tag of `<name>` back to the digest it had, and removes what this
promotion created, so nothing already in Ollama is lost.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from guardian.errors import ModelError, StateError, TargetUnavailable
from guardian.serving.base import Health, Placement, Release

log = structlog.get_logger(__name__)

_NAME = re.compile(r"[^a-z0-9._-]+")
_CHATML_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
_CHATML_SYSTEM = re.compile(r"<\|im_start\|>system\\n(.*?)<\|im_end\|>")
SMOKE_PROMPT = "Say hello."
OLLAMA = "ollama"

GgufFor = Callable[[Release], Path]


class OllamaUnavailable(TargetUnavailable):
    """Ollama could not be reached or answered with an error: the promotion waits."""


@dataclass(frozen=True)
class ChatFormat:
    """What Ollama needs to prompt a model as it was trained: a Go template, the default
    system prompt and the stop strings."""

    template: str
    system: str | None
    stop: list[str]


@dataclass(frozen=True)
class Published:
    """A model in Ollama: its tags and the manifest digest they point at."""

    host: str
    name: str
    tag: str
    digest: str
    blob: str
    replaced: str | None = None
    statuses: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """How users run it: `ollama run <name>`."""
        return f"{self.name}:latest"

    def placement(self) -> Placement:
        """What the registry records about where this model lives."""
        return Placement(
            target=OLLAMA,
            host=self.host,
            name=self.name,
            tag=self.tag,
            digest=self.digest,
            blob=self.blob,
        )


def model_name(pattern: str, repo: str, skill: str) -> str:
    """An Ollama model name from the config pattern (`{repo}`, `{skill}`), made legal."""
    raw = pattern.format(repo=repo, skill=skill).lower()
    name = _NAME.sub("-", raw).strip("-._")
    if not name:
        raise ModelError(f"promote.ollama.name: '{pattern}' gives no usable model name")
    return name


def chat_format(jinja_template: str) -> ChatFormat:
    """The Ollama form of a GGUF's chat template; only ChatML (SmolLM2, Qwen) is known."""
    if "<|im_start|>" not in jinja_template:
        raise ModelError(
            "the model's chat template is not ChatML: no Ollama template is known for it"
        )
    found = _CHATML_SYSTEM.search(jinja_template)
    return ChatFormat(_CHATML_TEMPLATE, found.group(1) if found else None, _chatml_stops())


def _chatml_stops() -> list[str]:
    return ["<|im_end|>", "<|im_start|>"]


def gguf_chat_template(path: Path) -> str:
    """The `tokenizer.chat_template` a GGUF carries (empty when it has none)."""
    from gguf import GGUFReader

    found = GGUFReader(str(path)).fields.get("tokenizer.chat_template")
    return str(found.contents()) if found is not None else ""


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file, as Ollama names blobs."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


class OllamaTarget:
    """The `ollama` target: a release's merged GGUF published on one server as `<name>:<run>`
    and `<name>:latest`, the old latest kept as `<name>:prev`.

    `gguf_for` writes (or finds) the release's GGUF: exporting is the engine's, so it is
    handed in; a target built only to roll back, list or check health needs none.
    """

    def __init__(
        self,
        host: str,
        gguf_for: GgufFor | None = None,
        *,
        timeout: float = 300.0,
        pattern: str = "{repo}",
    ) -> None:
        self.host = host
        self.gguf_for = gguf_for
        self.timeout = timeout
        self.pattern = pattern

    def promote(self, release: Release) -> Placement:
        """Export the release's GGUF and publish it; a failure leaves every tag as it was."""
        if self.gguf_for is None:
            raise StateError("the ollama target was built without a GGUF export to publish")
        gguf = self.gguf_for(release)
        fmt = chat_format(gguf_chat_template(gguf))
        name = model_name(self.pattern, release.repo_name, release.skill)
        published = OllamaServer(self.host, self.timeout).publish(
            gguf, name, release.run_id.lower(), fmt
        )
        log.info("promoted", target=OLLAMA, model=published.ref, digest=published.digest[:19])
        return published.placement()

    def rollback(self, current: Placement, previous: Placement | None) -> None:
        """Swap `:latest` and `:prev` on the server `current` was published to, refusing unless
        `:prev` is exactly the previous model's recorded digest."""
        if previous is None:
            raise StateError(f"{current.name}: the previous model was never published to Ollama")
        server = OllamaServer(current.host, self.timeout)
        server.rollback(current.name, want_prev=previous.digest)

    def list(self) -> builtins.list[Placement]:
        """Every tag on the server, each with the manifest digest it points at."""
        held = []
        for ref, digest in OllamaServer(self.host, self.timeout).models().items():
            name, _, tag = ref.rpartition(":")
            held.append(Placement(target=OLLAMA, host=self.host, name=name, tag=tag, digest=digest))
        return held

    def health(self) -> Health:
        """Ollama's version when the server answers, else the reason it does not."""
        try:
            version = OllamaServer(self.host, self.timeout).version()
        except OllamaUnavailable as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail=f"Ollama {version} at {self.host}")


class OllamaServer:
    """Publish, roll back and list a model's versions on one Ollama server."""

    def __init__(self, host: str, timeout: float = 300.0) -> None:
        from ollama import Client

        self.host = host
        self.client = Client(host=host, timeout=timeout)

    def version(self) -> str:
        """The server's version; raises OllamaUnavailable when it cannot be reached."""
        with _reachable(self.host, "version"):  # the client has no call of its own for it
            return str(self.client._request_raw("GET", "/api/version").json()["version"])

    def models(self) -> dict[str, str]:
        """Every `<name>:<tag>` on the server and the manifest digest it points at."""
        with _reachable(self.host, "list"):
            found = self.client.list().models
        return {str(m.model): str(m.digest) for m in found}

    def tags(self, name: str) -> dict[str, str]:
        """Every tag of `name` and the manifest digest it points at."""
        prefix = f"{name}:"
        return {
            ref[len(prefix) :]: digest
            for ref, digest in self.models().items()
            if ref.startswith(prefix)
        }

    def publish(self, gguf: Path, name: str, tag: str, fmt: ChatFormat) -> Published:
        """Upload `gguf`, create `<name>:<tag>`, verify it, make it latest (old latest -> prev)."""
        version = self.version()
        before = self.tags(name)
        log.info("ollama publish", host=self.host, version=version, model=f"{name}:{tag}")
        try:
            return self._publish(gguf, name, tag, fmt, before)
        except BaseException:
            self._restore(name, before)
            raise

    def _publish(
        self, gguf: Path, name: str, tag: str, fmt: ChatFormat, before: dict[str, str]
    ) -> Published:
        want = file_digest(gguf)
        with _reachable(self.host, "upload"):
            blob = self.client.create_blob(gguf)
        if blob != want:
            raise OllamaUnavailable(f"{gguf}: uploaded as {blob}, but the file is {want}")
        ref = f"{name}:{tag}"
        parameters: dict[str, Any] = {"stop": fmt.stop, "temperature": 0}
        with _reachable(self.host, "create"):
            statuses = [
                str(p.status)
                for p in self.client.create(
                    model=ref,
                    files={gguf.name: blob},
                    template=fmt.template,
                    system=fmt.system,
                    parameters=parameters,
                    stream=True,
                )
            ]
        if not statuses or statuses[-1] != "success":
            raise OllamaUnavailable(f"create {ref}: ended without success ({statuses[-1:]})")
        self.verify(ref, fmt)
        digest = self.tags(name).get(tag)
        if digest is None:
            raise OllamaUnavailable(f"create {ref}: reported success but {ref} is not listed")
        old = before.get("latest")
        if old is not None and old != digest:
            self._copy(f"{name}:latest", f"{name}:prev", old)
        self._copy(ref, f"{name}:latest", digest)
        return Published(self.host, name, tag, digest, blob, old, statuses)

    def verify(self, ref: str, fmt: ChatFormat) -> None:
        """`show` must echo the template we set, and one smoke prompt must answer."""
        with _reachable(self.host, "show"):
            shown = self.client.show(ref)
        if (shown.template or "") != fmt.template:
            raise OllamaUnavailable(f"show {ref}: the chat template did not take")
        with _reachable(self.host, "generate"):
            reply = self.client.generate(
                model=ref, prompt=SMOKE_PROMPT, options={"num_predict": 8, "temperature": 0}
            )
        if not str(reply.response or "").strip():
            raise OllamaUnavailable(f"generate {ref}: the smoke prompt got an empty answer")

    def _copy(self, source: str, dest: str, digest: str) -> None:
        """Copy a tag and check that `dest` now points at exactly `digest`."""
        with _reachable(self.host, "copy"):
            self.client.copy(source, dest)
        name, tag = dest.rsplit(":", 1)
        got = self.tags(name).get(tag)
        if got != digest:
            raise OllamaUnavailable(f"copy {source} -> {dest}: {dest} is {got}, not {digest}")

    def rollback(self, name: str, want_prev: str | None = None) -> tuple[str, str]:
        """Swap `<name>:latest` and `<name>:prev`; returns (new latest, new prev) digests.

        `want_prev` is the digest the registry recorded for the previous model: rolling back
        to anything else is refused rather than guessed.
        """
        tags = self.tags(name)
        latest, prev = tags.get("latest"), tags.get("prev")
        if prev is None or latest is None:
            raise ModelError(f"{self.host}: {name} has no :prev to roll back to")
        if want_prev is not None and prev != want_prev:
            raise ModelError(
                f"{name}:prev is {prev[:19]}, but the previous model was {want_prev[:19]}: "
                "not rolling back to a model the registry does not know"
            )
        keep = next(
            (t for t, d in tags.items() if d == latest and t not in ("latest", "prev")), None
        )
        if keep is None:
            raise ModelError(f"{name}:latest has no run tag to keep it by; refusing to drop it")
        try:
            self._copy(f"{name}:prev", f"{name}:latest", prev)
            self._copy(f"{name}:{keep}", f"{name}:prev", latest)
        except BaseException:
            self._restore(name, tags)
            raise
        return prev, latest

    def _restore(self, name: str, before: dict[str, str]) -> None:
        """Point every tag of `name` back at its digest in `before`; drop tags added since."""
        try:
            now = self.tags(name)
            for tag, digest in before.items():
                if now.get(tag) == digest:
                    continue
                source = next((t for t, d in now.items() if d == digest), None)
                if source is None:
                    log.error("ollama restore: no tag holds", tag=f"{name}:{tag}", digest=digest)
                    continue
                self.client.copy(f"{name}:{source}", f"{name}:{tag}")
            for tag in set(now) - set(before):
                self.client.delete(f"{name}:{tag}")
        except Exception as exc:  # the original failure is what the caller reports
            log.error("ollama restore failed", model=name, error=str(exc))


@contextmanager
def _reachable(host: str, what: str) -> Iterator[None]:
    """Turn the client's connection, timeout and HTTP errors into OllamaUnavailable."""
    import httpx
    from ollama import ResponseError

    try:
        yield
    except ConnectionError:
        raise OllamaUnavailable(f"Ollama at {host} is not reachable ({what})") from None
    except httpx.TimeoutException:
        raise OllamaUnavailable(f"Ollama at {host} timed out ({what})") from None
    except httpx.TransportError as exc:
        raise OllamaUnavailable(f"Ollama at {host}: {what} failed ({exc})") from None
    except ResponseError as exc:
        raise OllamaUnavailable(
            f"Ollama at {host}: {what} failed ({exc.status_code}: {exc.error})"
        ) from None
