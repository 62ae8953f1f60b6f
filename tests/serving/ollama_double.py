"""In-process fake Ollama server ("double") for tests, driven by the official ``ollama`` client.

Mirrors the HTTP behaviour of github:ollama/ollama as read from its source: snapshot HEAD
fb307609 (2026-08-21, = tag v0.33.0-rc2) and open PR #14969 at ca0b86d3 (2026-08-20, "create:
add server-side MLX imports and drop GGUF conversion"; a third-party report,
generative-computing/mellea#1651, says it was merged 2026-09-15 and shipped in v0.34.1).
The default ``version`` is therefore "0.34.1" and /api/create follows PR #14969.

Mirrored (file paths are in ollama/ollama):

* routes, 404 "404 page not found" / 405 "405 method not allowed": server/routes.go
  GenerateRoutes.
* GET /api/version -> {"version"}; GET /api/tags (server/model_list_cache.go
  buildModelListSummary): name/model = DisplayShortest, digest = hex sha256 of the manifest
  file bytes (manifest/manifest.go ParseNamedManifest), size = sum of layer + config sizes,
  details from the config blob, context/embedding length and capabilities from the GGUF.
* HEAD/POST /api/blobs/:digest (routes.go HeadBlobHandler/CreateBlobHandler,
  manifest/paths.go BlobsPath, manifest/layer.go NewLayer): digest must match
  ``^sha256[:-][0-9a-fA-F]{64}$`` else 400 "invalid digest format"; HEAD 200 or 404
  'blob "<d>" not found'; POST on an existing blob 200, else the body is stored under its
  *actual* sha256 (even on mismatch, as NewLayer does), then 400 'digest mismatch, expected
  "<d>", got "<actual>"' or 201.
* POST /api/create (PR #14969 server/create.go CreateHandler, validateCreateFiles,
  detectModelTypeFromFiles, validateCreateOptions, ggufLayersWithMediaType, createModel,
  setTemplate/setSystem/setLicense/setParameters/setMessages, createConfigLayer;
  routes.go streamResponse/waitForStream). Errors found before the first status line are
  plain HTTP errors; later ones are an ``{"error"}`` line in a 200 stream (the python client
  raises ResponseError with status_code -1) or, with stream false, an HTTP error (500 unless
  the source marks it 400). Status lines: "parsing GGUF" per file, one "using existing layer
  sha256:..." / "creating new layer sha256:..." per layer, "writing manifest", "success".
  Refusals: "invalid model name"; "file path must be relative: <p>"; "invalid digest for <p>:
  invalid digest format"; "neither 'from' or 'files' was specified"; "unknown type"; "supplied
  file was not in GGUF format" (bad magic, 400); unknown blob -> "open <path>: no such file or
  directory" (500, after "parsing GGUF"); any quantize with a GGUF or ``from`` -> 400
  "create-time quantization is only supported for safetensors imports; quantize GGUF models
  with llama.cpp tools before importing" (HEAD still quantizes F16/BF16/F32 GGUFs and refuses
  others with "quantization is only supported for F16, BF16 and F32 models");
  "only one adapter is currently supported";
  "template error: ..." (Go template syntax is only roughly checked here).
  Layers: model GGUF as application/vnd.ollama.image.model with "from" = the file name
  (general.type "adapter" -> image.adapter, projector GGUFs -> image.projector), then
  image.template, image.system, image.license, image.params (JSON of the merged map, Go
  encoding: sorted keys, HTML-escaped, trailing newline), image.messages; config blob
  application/vnd.docker.container.image.v1+json; old layers no other manifest uses are
  pruned on overwrite and on delete (manifest.go RemoveLayers).
* Adapters: neither HEAD nor PR #14969 refuses GGUF adapters on the server (one adapter is
  accepted; only safetensors adapters get "safetensors imports do not support adapters"). The
  v0.34.1 refusal is known only from the third-party report (which says the CLI rejects
  ADAPTER). ``refuse_adapters=True`` (default) answers 400 ADAPTERS_REFUSED for ``adapters``
  and for an adapter-type GGUF in ``files``; that message is NOT verified against Ollama's
  source. ``refuse_adapters=False`` gives the verified source behaviour.
* POST /api/show (routes.go ShowHandler/GetModelInfo, images.go Model.String,
  parser/parser.go Command.String/quote): modelfile, parameters (``%-30s %#v`` per value, list
  values one line each), template (the TEMPLATE layer, else the GGUF's chat template, else
  "{{ .Prompt }}"), system, license, details, model_info (GGUF KV without general.name and
  tokenizer.chat_template, arrays longer than 5 emptied, plus general.parameter_count),
  tensors, capabilities, modified_at. 404 "model '<name:tag>' not found".
* POST /api/copy (CopyHandler/CopyModel): same manifest bytes, so same digest; 404
  'model "<source>" not found'. DELETE /api/delete: 404 "model '<name>' not found".
* POST /api/generate, /api/chat: response objects as api/types.go GenerateResponse /
  ChatResponse; 404 "model '<name>' not found"; empty prompt/messages -> done_reason "load".
* Names (types/model/name.go ParseName, routes.go getExistingName): "x" is
  registry.ollama.ai/library/x:latest, parts are matched case-insensitively to existing models.

Text: runner "echo" answers "double:<12 hex of the model blob>: <first 8 prompt words>";
runner "llama_cpp" (if importable) generates greedily with llama_cpp.Llama on the blob, using
the GGUF's own chat template. Faults: fail_create yields "parsing GGUF" then an error (an
in-stream error line when streaming, HTTP 500 otherwise); fail_copy answers 500;
upload_delay sleeps after the blob is stored, before answering.

Not mirrored: pulls and pushes (``from`` a model that is not present fails like a pull of a
missing model), safetensors/MLX imports, draft models, chat-template auto-detection
(model.go detectChatTemplate), the ``info`` field, cloud models, real Go template rendering.
Go map order is random; the double sorts params in show output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import traceback
import unicodedata
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import gguf
import numpy as np

DEFAULT_VERSION = "0.34.1"

MT_MODEL = "application/vnd.ollama.image.model"
MT_ADAPTER = "application/vnd.ollama.image.adapter"
MT_PROJECTOR = "application/vnd.ollama.image.projector"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_SYSTEM = "application/vnd.ollama.image.system"
MT_LICENSE = "application/vnd.ollama.image.license"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_MESSAGES = "application/vnd.ollama.image.messages"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
GGUF_MEDIA_TYPES = (MT_MODEL, MT_ADAPTER, MT_PROJECTOR)

ERR_INVALID_DIGEST = "invalid digest format"
ERR_INVALID_NAME = "invalid model name"
ERR_MISSING_BODY = "missing request body"
ERR_ONE_ADAPTER = "only one adapter is currently supported"
ERR_ONLY_GGUF = "supplied file was not in GGUF format"
ERR_UNKNOWN_TYPE = "unknown type"
ERR_NEITHER = "neither 'from' or 'files' was specified"
ERR_FILE_PATH = "file path must be relative"
ERR_SAFETENSORS_FROM = "safetensors imports do not support FROM model overlays"
ERR_SAFETENSORS_ADAPTERS = "safetensors imports do not support adapters"
ERR_MIXED = "mixed model file types"
ERR_BAD_TEMPLATE = "template error"
ERR_QUANTIZE_GGUF = (
    "create-time quantization is only supported for safetensors imports; "
    "quantize GGUF models with llama.cpp tools before importing"
)
ERR_DRAFT_QUANTIZE_GGUF = (
    "draft quantization during create is only supported for safetensors imports; "
    "quantize GGUF draft models with llama.cpp tools before importing"
)
ERR_PULL_MISSING = "pull model manifest: file does not exist"
# UNVERIFIED: taken from the design notes / third-party report, not from Ollama's source.
ADAPTERS_REFUSED = "LoRA adapters are no longer supported"
INJECTED_CREATE = "injected failure (OllamaDouble.fail_create)"
INJECTED_COPY = "injected failure (OllamaDouble.fail_copy)"

_DIGEST_RE = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
_BLOB_FILE_RE = re.compile(r"^sha256-[0-9a-f]{64}$")
_DEFAULT_TEMPLATE = "{{ .Prompt }}"
_CHUNK = 1 << 20

# fs/ggml/type.go FileType.String(); absent numbers print "unknown".
_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip


# --------------------------------------------------------------------------- Go formatting


def go_quote(s: str) -> str:
    """Quote like Go's strconv.Quote (%q), so error texts match the real server's."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
               "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}  # fmt: skip
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in escapes:
            out.append(escapes[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o >= 0x80 and unicodedata.category(ch)[0] in "CZ":
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a positive float and the decimal point position."""
    _sign, digits, exp = Decimal(repr(f)).as_tuple()
    assert isinstance(exp, int)
    dp = len(digits) + exp
    s = "".join(map(str, digits)).rstrip("0") or "0"
    return s, dp


def _fmt_fixed(s: str, dp: int) -> str:
    """Render digits with the decimal point at dp (Go's %f with shortest precision)."""
    if dp <= 0:
        return "0." + "0" * (-dp) + s
    if dp >= len(s):
        return s + "0" * (dp - len(s))
    return s[:dp] + "." + s[dp:]


def _fmt_exp(s: str, dp: int) -> str:
    """Render digits as Go's %e with shortest precision (at least two exponent digits)."""
    mant = s[0] + ("." + s[1:] if len(s) > 1 else "")
    e = dp - 1
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _go_float(f: float, *, json_mode: bool) -> str:
    """Format a float64 like Go's %v (json_mode False) or encoding/json (json_mode True)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign = "-" if f < 0 else ""
    s, dp = _shortest_digits(abs(f))
    if json_mode:
        if abs(f) < 1e-6 or abs(f) >= 1e21:
            return sign + re.sub(r"e-0(\d)$", r"e-\1", _fmt_exp(s, dp))
        return sign + _fmt_fixed(s, dp)
    exp = dp - 1
    return sign + (_fmt_exp(s, dp) if exp < -4 or exp >= 6 else _fmt_fixed(s, dp))


def go_v(v: Any, *, sharp: bool = False) -> str:
    """Format a JSON-decoded value like Go's %v (or %#v), numbers being float64 as in Go."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return _go_float(float(v), json_mode=False)
    if isinstance(v, str):
        return go_quote(v) if sharp else v
    return str(v)


def _go_json_str(s: str) -> str:
    """Encode a string like Go's encoding/json (HTML-escaped, \\b and \\f short forms)."""
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\b": "\\b", "\f": "\\f"}  # fmt: skip
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in short:
            out.append(short[ch])
        elif o < 0x20 or ch in "<>&" or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(v: Any, *, sort_keys: bool = False) -> str:
    """Encode like Go's json.Marshal so stored blobs (and so digests) look like the real ones."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v, json_mode=True)
    if isinstance(v, str):
        return _go_json_str(v)
    if isinstance(v, list | tuple):
        return "[" + ",".join(go_json(x, sort_keys=sort_keys) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v) if sort_keys else list(v)
        items = (f"{_go_json_str(str(k))}:{go_json(v[k], sort_keys=sort_keys)}" for k in keys)
        return "{" + ",".join(items) + "}"
    raise TypeError(f"cannot encode {type(v).__name__}")


def human_number(n: int) -> str:
    """Ollama's format.HumanNumber, used for details.parameter_size."""
    for unit, suffix, frac in ((1e9, "B", 1), (1e6, "M", 2)):
        if n >= unit:
            x = n / unit
            return f"{x:.0f}{suffix}" if x == int(x) else f"{x:.{frac}f}{suffix}"
    if n >= 1000:
        return f"{n / 1000:.0f}K"
    return str(n)


def _quote_modelfile(s: str) -> str:
    """parser.quote: wrap values with newlines or edge spaces in quotes like the real Modelfile."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


# --------------------------------------------------------------------------- model names

_DEFAULT_HOST, _DEFAULT_NS, _DEFAULT_TAG, _MISSING = (
    "registry.ollama.ai", "library", "latest", "!MISSING!"
)  # fmt: skip


class Name(NamedTuple):
    """A fully qualified model name, as types/model/name.go Name."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def short(self) -> str:
        """DisplayShortest: "x:latest", "ns/x:tag" or "host/ns/x:tag"."""
        if self.host.lower() != _DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != _DEFAULT_NS:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def valid(self) -> bool:
        """IsFullyQualified: every part has legal characters and length."""
        return all(_valid_part(i, p) for i, p in enumerate(self))


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    """name.go cutPromised: split at the last sep, marking empty sides as missing."""
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return s[:i] or _MISSING, s[i + 1 :] or _MISSING, True


def parse_name(s: str) -> Name:
    """model.ParseName: fill in the default host, namespace and tag."""
    host = ns = tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        model = s
    else:
        s, ns, promised = _cut_promised(s, "/")
        if not promised:
            ns = s
        else:
            host = s.split("://", 1)[1] if "://" in s else s
    return Name(host or _DEFAULT_HOST, ns or _DEFAULT_NS, model, tag or _DEFAULT_TAG)


def _valid_part(kind: int, s: str) -> bool:
    """name.go isValidPart for kind 0 host, 1 namespace, 2 model, 3 tag."""
    if not 1 <= len(s) <= (350 if kind == 0 else 80):
        return False
    for i, c in enumerate(s):
        alnum = c.isascii() and (c.isalnum() or c == "_")
        if i == 0:
            if not alnum:
                return False
        elif c == "." and kind == 1 or c == ":" and kind != 0:
            return False
        elif not (alnum or c in "_-.:"):
            return False
    return True


def _ref_base(raw: str) -> str:
    """modelref.ParseRef: trim and drop an explicit ":local" source suffix."""
    raw = raw.strip()
    i = raw.rfind(":")
    if i >= 0 and raw[i + 1 :].strip().lower() == "local":
        return raw[:i]
    return raw


# --------------------------------------------------------------------------- GGUF metadata


@dataclass(frozen=True)
class GGUFInfo:
    """The parts of a GGUF header the server looks at (fs/ggml KV and tensor list)."""

    kv: dict[str, Any]
    kv_types: dict[str, int]
    tensors: list[dict[str, Any]]
    parameter_count: int

    def arch_key(self, key: str) -> Any:
        """KV lookups of non-general keys are prefixed with the architecture, as in fs/ggml."""
        return self.kv.get(f"{self.architecture}.{key}")

    @property
    def architecture(self) -> str:
        """general.architecture, "unknown" when absent."""
        v = self.kv.get("general.architecture")
        return v if isinstance(v, str) else "unknown"

    @property
    def kind(self) -> str:
        """general.type ("model", "adapter", ...), "unknown" when absent."""
        v = self.kv.get("general.type")
        return v if isinstance(v, str) else "unknown"

    @property
    def file_type(self) -> str:
        """KV.FileType().String(): only a uint32 > 0 counts, so F32 (0) reads "unknown"."""
        v = self.kv.get("general.file_type")
        ok = self.kv_types.get("general.file_type") == gguf.GGUFValueType.UINT32
        return _FILE_TYPES.get(v, "unknown") if ok and isinstance(v, int) and v > 0 else "unknown"

    @property
    def raw_file_type(self) -> str:
        """general.file_type name as /api/tags reads it straight from the header."""
        v = self.kv.get("general.file_type")
        return _FILE_TYPES.get(v, "unknown") if isinstance(v, int) else "unknown"

    @property
    def chat_template(self) -> str:
        """tokenizer.chat_template, "" when absent."""
        v = self.kv.get("tokenizer.chat_template")
        return v if isinstance(v, str) else ""

    @property
    def is_projector(self) -> bool:
        """create.go isProjectorGGUF."""
        if self.kind in ("projector", "mmproj"):
            return True
        blocks = self.arch_key("block_count") or 0
        if blocks == 0 and (self.arch_key("vision.block_count") or 0) > 0:
            return True
        enc = self.arch_key("has_vision_encoder") or self.arch_key("has_audio_encoder")
        return self.architecture == "clip" and blocks == 0 and bool(enc)

    def capabilities(self) -> list[str]:
        """Completion, or embedding when the model has a pooling type."""
        return ["embedding" if self.arch_key("pooling_type") is not None else "completion"]


def read_gguf(path: Path) -> GGUFInfo:
    """Parse a GGUF header with gguf.GGUFReader (memory-mapped, tensors are not loaded)."""
    reader = gguf.GGUFReader(path)
    kv: dict[str, Any] = {}
    kv_types: dict[str, int] = {}
    for name, fld in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        value = fld.contents()
        if fld.types and fld.types[-1] == gguf.GGUFValueType.FLOAT32:
            # Go encodes float32 with 32-bit shortest digits.
            conv = lambda x: float(str(np.float32(x)))  # noqa: E731
            value = [conv(x) for x in value] if isinstance(value, list) else conv(value)
        kv[name] = value
        kv_types[name] = fld.types[0] if fld.types else -1
    tensors = [
        {"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape]}
        for t in reader.tensors
    ]
    count = sum(int(t.n_elements) for t in reader.tensors)
    del reader
    return GGUFInfo(kv, kv_types, tensors, count)


def _template_error(t: str) -> str | None:
    """Rough stand-in for Go's text/template parse: unclosed actions and unbalanced blocks."""
    depth, pos = 0, 0
    while (start := t.find("{{", pos)) >= 0:
        end = t.find("}}", start + 2)
        if end < 0:
            return "template: :1: unclosed action"
        action = t[start + 2 : end].strip("- \t\r\n")
        word = action.split(None, 1)[0] if action else ""
        if word in ("if", "range", "with", "define", "block"):
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                return "template: :1: unexpected {{end}}"
        pos = end + 2
    return "template: :1: unexpected EOF" if depth else None


# --------------------------------------------------------------------------- HTTP plumbing


class _HTTPError(Exception):
    """An error answered as JSON {"error": message} with an HTTP status."""

    def __init__(self, status: int, message: str, *, text: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.text = status, message, text


@dataclass
class _Fail:
    """An error raised after work started (sent in-stream when a stream is already open)."""

    status: int
    message: str


Event = dict[str, Any] | _Fail


@dataclass
class _Record:
    """One stored model: manifest bytes as written to disk, parsed manifest, digest, mtime."""

    raw: bytes
    manifest: dict[str, Any]
    digest: str
    modified: datetime


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its double."""

    daemon_threads = True
    allow_reuse_address = True
    double: OllamaDouble


class _Handler(BaseHTTPRequestHandler):
    """Request handler: routing, body streaming (Content-Length or chunked), JSON replies."""

    protocol_version = "HTTP/1.1"
    server_version = "OllamaDouble"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        """Track the connection so stop() can cut keep-alive sockets."""
        super().setup()
        self.server.double._track(self.connection, True)

    def finish(self) -> None:
        """Untrack the connection."""
        try:
            super().finish()
        finally:
            self.server.double._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Dispatch GET."""
        self._dispatch()

    do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        """Route one request and turn exceptions into JSON errors."""
        self._body_iter: Iterator[bytes] | None = None
        self._started = False
        path = urlsplit(self.path).path
        double = self.server.double
        with double._lock:
            double.requests.append((self.command, path))
        try:
            double._route(self, self.command, path)
        except _HTTPError as e:
            self._reply_error(e)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a double must answer, and record why
            double.errors.append(traceback.format_exc())
            self._reply_error(_HTTPError(500, str(e)))
        finally:
            with contextlib.suppress(Exception):
                self.drain()

    def _reply_error(self, e: _HTTPError) -> None:
        """Send an error unless a response is already under way (then just close)."""
        if self._started:
            self.close_connection = True
            return
        with contextlib.suppress(Exception):
            self.drain()
        if e.text:
            self.send_bytes(e.status, e.message.encode(), "text/plain")
        else:
            self.send_json(e.status, {"error": e.message})

    # -- request body
    def body(self) -> Iterator[bytes]:
        """The request body in chunks, read once (Content-Length or chunked encoding)."""
        if self._body_iter is None:
            self._body_iter = self._read_body()
        return self._body_iter

    def _read_body(self) -> Iterator[bytes]:
        """Generator over the raw body; decodes Transfer-Encoding: chunked."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionResetError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                while size:
                    data = self.rfile.read(min(_CHUNK, size))
                    if not data:
                        raise ConnectionResetError("eof in chunked body")
                    size -= len(data)
                    yield data
                self.rfile.readline(65537)
        try:
            left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise _HTTPError(400, "invalid Content-Length") from None
        while left > 0:
            data = self.rfile.read(min(_CHUNK, left))
            if not data:
                raise ConnectionResetError("eof in body")
            left -= len(data)
            yield data

    def drain(self) -> None:
        """Consume whatever is left of the body so the keep-alive connection stays in sync."""
        for _ in self.body():
            pass

    def read_json(self, go_type: str, schema: dict[str, type | tuple[type, ...]]) -> dict:
        """Parse the body like gin's ShouldBindJSON into a Go struct, with its error texts."""
        raw = b"".join(self.body())
        if not raw.strip():
            raise _HTTPError(400, ERR_MISSING_BODY)
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise _HTTPError(400, f"invalid character in JSON body: {e}") from None
        if not isinstance(obj, dict):
            kind = _json_kind(obj)
            raise _HTTPError(400, f"json: cannot unmarshal {kind} into Go value of type {go_type}")
        for key, want in schema.items():
            v = obj.get(key)
            if v is not None and not isinstance(v, want):
                kind = _json_kind(v)
                raise _HTTPError(
                    400, f"json: cannot unmarshal {kind} into Go struct field {go_type}.{key}"
                )
        return obj

    # -- responses
    def send_bytes(self, status: int, data: bytes, ctype: str) -> None:
        """Send a complete response (no body on HEAD)."""
        self._started = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def send_json(self, status: int, obj: Any) -> None:
        """Send a JSON response like gin's c.JSON."""
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_bytes(status, data, "application/json; charset=utf-8")

    def send_events(self, events: Iterator[Event], stream: bool) -> None:
        """streamResponse / waitForStream: NDJSON stream, or one object (last, or the error)."""
        if not stream:
            last: dict[str, Any] = {}
            for ev in events:
                if isinstance(ev, _Fail):
                    self.send_json(ev.status, {"error": ev.message})
                    return
                last = ev
            self.send_json(200, last)
            return
        for ev in events:
            if isinstance(ev, _Fail):
                if not self._started:
                    self.send_json(ev.status, {"error": ev.message})
                    return
                self._chunk({"error": ev.message})
                break
            if not self._started:
                self._started = True
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            self._chunk(ev)
        if self._started:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_bytes(200, b"", "application/x-ndjson")

    def _chunk(self, obj: dict[str, Any]) -> None:
        """Write one NDJSON line as an HTTP chunk."""
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")


def _json_kind(v: Any) -> str:
    """JSON type name as Go's decoder reports it."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


_CREATE_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "model": str, "name": str, "stream": bool, "quantize": str, "quantization": str,
    "draft_quantize": str, "from": str, "files": dict, "draft_files": dict, "adapters": dict,
    "template": str, "system": str, "parameters": dict, "messages": list,
    "license": (str, list),
}  # fmt: skip
_GEN_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "model": str, "prompt": str, "system": str, "template": str, "stream": bool, "raw": bool,
    "options": dict, "messages": list, "suffix": str,
}  # fmt: skip


# --------------------------------------------------------------------------- the double


class OllamaDouble:
    """A fake Ollama server on 127.0.0.1 for tests; use as ``with OllamaDouble() as d:``."""

    def __init__(
        self,
        *,
        version: str = DEFAULT_VERSION,
        runner: str = "echo",
        blobs_dir: Path | None = None,
        refuse_adapters: bool = True,
        port: int = 0,
    ) -> None:
        """Configure the double (`port` 0: any free one); nothing listens until __enter__."""
        if runner not in ("echo", "llama_cpp"):
            raise ValueError(f"runner must be 'echo' or 'llama_cpp', not {runner!r}")
        self.version = version
        self.port = port
        self.runner = runner
        self.refuse_adapters = refuse_adapters
        self.host = ""
        self.blobs: dict[str, Path] = {}
        self.manifests: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.fail_create = 0
        self.fail_copy = 0
        self.upload_delay = 0.0
        self._lock = threading.RLock()
        self._records: dict[Name, _Record] = {}
        self._gguf_cache: dict[str, GGUFInfo] = {}
        self._conns: set[socket.socket] = set()
        self._tmp: str | None = None
        self._blobs_dir_arg = blobs_dir
        self.blobs_dir = Path(blobs_dir) if blobs_dir is not None else Path()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._llamas: dict[str, Any] = {}
        self._llama_lock = threading.Lock()
        self.active_runner = "echo"
        if runner == "llama_cpp":
            try:
                import llama_cpp  # noqa: F401

                self.active_runner = "llama_cpp"
            except ImportError:
                self.active_runner = "echo"

    # -- lifecycle
    def __enter__(self) -> OllamaDouble:
        """Create the blob dir and serve on an ephemeral port in a daemon thread."""
        if self._blobs_dir_arg is None:
            self._tmp = tempfile.mkdtemp(prefix="ollama-double-")
            self.blobs_dir = Path(self._tmp) / "blobs"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        for p in self.blobs_dir.iterdir():
            if _BLOB_FILE_RE.match(p.name):
                self.blobs["sha256:" + p.name[7:]] = p
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.double = self
        self._server = server
        self.host = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving, join the thread, free llama models and the temp dir."""
        self.stop()
        self._llamas.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def stop(self) -> None:
        """Stop listening and cut open connections (refused afterwards); state is kept."""
        if self._server is None or self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _track(self, conn: socket.socket, add: bool) -> None:
        """Remember live connections for stop()."""
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # -- public helpers
    def digest_of(self, name: str) -> str | None:
        """The manifest digest (bare hex, as /api/tags shows it) for a model name, or None."""
        rec = self._lookup(name)
        return rec.digest if rec else None

    def model_blob(self, name: str) -> str | None:
        """The "sha256:..." digest of the model's GGUF layer, or None."""
        rec = self._lookup(name)
        layer = _first_layer(rec.manifest, MT_MODEL) if rec else None
        return layer["digest"] if layer else None

    def _lookup(self, raw: str) -> _Record | None:
        """Find a record by name the way the server resolves names."""
        n = parse_name(_ref_base(raw))
        if not n.valid:
            return None
        with self._lock:
            return self._records.get(self._canonical(n))

    def _canonical(self, n: Name) -> Name:
        """getExistingName: adopt the spelling of existing names part by part, ignoring case."""
        parts = list(n)
        with self._lock:
            for existing in self._records:
                for i, p in enumerate(existing):
                    if parts[i].lower() == p.lower():
                        parts[i] = p
        return Name(*parts)

    def _blob_path(self, digest: str) -> Path:
        """manifest.BlobsPath: blobs/sha256-<hex>."""
        return self.blobs_dir / digest.replace(":", "-")

    # -- routing
    def _route(self, h: _Handler, method: str, path: str) -> None:
        """GenerateRoutes: exact paths plus /api/blobs/:digest; 405 or 404 otherwise."""
        routes: dict[str, dict[str, Callable[[_Handler], None]]] = {
            "/": {"GET": self._root, "HEAD": self._root},
            "/api/version": {"GET": self._version, "HEAD": self._version},
            "/api/tags": {"GET": self._tags, "HEAD": self._tags},
            "/api/ps": {"GET": self._ps},
            "/api/show": {"POST": self._show},
            "/api/delete": {"DELETE": self._delete},
            "/api/create": {"POST": self._create},
            "/api/copy": {"POST": self._copy},
            "/api/generate": {"POST": self._generate},
            "/api/chat": {"POST": self._chat},
        }
        if path.startswith("/api/blobs/") and "/" not in path[len("/api/blobs/") :]:
            digest = path[len("/api/blobs/") :]
            table: dict[str, Callable[[_Handler], None]] = {
                "HEAD": lambda hh: self._blob_head(hh, digest),
                "POST": lambda hh: self._blob_post(hh, digest),
            }
        else:
            table = routes.get(path, {})
        if method in table:
            table[method](h)
        elif table:
            raise _HTTPError(405, "405 method not allowed", text=True)
        else:
            raise _HTTPError(404, "404 page not found", text=True)

    # -- simple endpoints
    def _root(self, h: _Handler) -> None:
        """GET / -> "Ollama is running"."""
        h.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _version(self, h: _Handler) -> None:
        """GET /api/version."""
        h.send_json(200, {"version": self.version})

    def _ps(self, h: _Handler) -> None:
        """GET /api/ps: the double never keeps models loaded."""
        h.send_json(200, {"models": []})

    def _tags(self, h: _Handler) -> None:
        """GET /api/tags, most recently modified first."""
        with self._lock:
            items = sorted(self._records.items(), key=lambda kv: kv[1].modified, reverse=True)
            models = [self._list_entry(n, r) for n, r in items]
        h.send_json(200, {"models": models})

    def _list_entry(self, n: Name, rec: _Record) -> dict[str, Any]:
        """buildModelListSummary for one model."""
        cfg = self._config_of(rec)
        m = rec.manifest
        size = sum(layer["size"] for layer in m["layers"]) + m["config"]["size"]
        details: dict[str, Any] = {
            "parent_model": "",
            "format": cfg.get("model_format", ""),
            "family": cfg.get("model_family", ""),
            "families": cfg.get("model_families"),
            "parameter_size": cfg.get("model_type", ""),
            "quantization_level": cfg.get("file_type", ""),
        }
        caps: list[str] = []
        info = self._info_of_layer(_first_layer(m, MT_MODEL))
        if info is not None:
            caps += info.capabilities()
            if ctx := info.arch_key("context_length"):
                details["context_length"] = int(ctx)
            if emb := info.arch_key("embedding_length"):
                details["embedding_length"] = int(emb)
            if details["quantization_level"] in ("", "unknown"):
                details["quantization_level"] = info.raw_file_type
        caps += _template_caps(self._text_layer(rec, MT_TEMPLATE))
        if _first_layer(m, MT_PROJECTOR):
            caps.append("vision")
        entry: dict[str, Any] = {
            "name": n.short,
            "model": n.short,
            "modified_at": rec.modified.isoformat(),
            "size": size,
            "digest": rec.digest,
            "details": details,
        }
        if caps:
            entry["capabilities"] = caps
        return entry

    # -- blobs
    def _blob_head(self, h: _Handler, digest: str) -> None:
        """HEAD /api/blobs/:digest."""
        if not _DIGEST_RE.match(digest):
            raise _HTTPError(400, ERR_INVALID_DIGEST)
        if not self._blob_path(digest).is_file():
            raise _HTTPError(404, f"blob {go_quote(digest)} not found")
        h.send_bytes(200, b"", "text/plain")

    def _blob_post(self, h: _Handler, digest: str) -> None:
        """POST /api/blobs/:digest: stream to disk while hashing, then check the digest."""
        if not _DIGEST_RE.match(digest):
            raise _HTTPError(400, ERR_INVALID_DIGEST)
        if self._blob_path(digest).is_file():
            h.drain()
            h.send_bytes(200, b"", "text/plain")
            return
        fd, tmp_name = tempfile.mkstemp(prefix="sha256-", suffix=".partial", dir=self.blobs_dir)
        hasher = sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in h.body():
                    out.write(chunk)
                    hasher.update(chunk)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        actual = "sha256:" + hasher.hexdigest()
        final = self._blob_path(actual)
        with self._lock:
            if final.is_file():
                Path(tmp_name).unlink(missing_ok=True)
            else:
                os.replace(tmp_name, final)
                final.chmod(0o644)
            self.blobs[actual] = final
        if self.upload_delay > 0:
            time.sleep(self.upload_delay)
        if actual != digest:
            raise _HTTPError(
                400, f"digest mismatch, expected {go_quote(digest)}, got {go_quote(actual)}"
            )
        h.send_bytes(201, b"", "text/plain")

    def _store_blob(self, data: bytes) -> tuple[str, bool]:
        """Write a small blob (template, params, config...); returns digest and whether new."""
        digest = "sha256:" + sha256(data).hexdigest()
        path = self._blob_path(digest)
        with self._lock:
            new = not path.is_file()
            if new:
                path.write_bytes(data)
            self.blobs[digest] = path
        return digest, new

    def _new_layer(self, data: bytes, media_type: str) -> tuple[dict[str, Any], str]:
        """manifest.NewLayer: store the bytes and describe the layer, with its status line."""
        digest, new = self._store_blob(data)
        status = f"{'creating new' if new else 'using existing'} layer {digest}"
        return {"mediaType": media_type, "digest": digest, "size": len(data)}, status

    def _gguf_info(self, digest: str) -> GGUFInfo:
        """Parsed GGUF header of a blob (cached per digest)."""
        with self._lock:
            cached = self._gguf_cache.get(digest)
        if cached is None:
            cached = read_gguf(self._blob_path(digest))
            with self._lock:
                self._gguf_cache[digest] = cached
        return cached

    def _info_of_layer(self, layer: dict[str, Any] | None) -> GGUFInfo | None:
        """GGUF info for a manifest layer, None if absent or unreadable."""
        if layer is None:
            return None
        try:
            return self._gguf_info(layer["digest"])
        except Exception:  # noqa: BLE001
            return None

    def _text_layer(self, rec: _Record, media_type: str) -> str | None:
        """Contents of the first layer of a media type as text, None if absent."""
        layer = _first_layer(rec.manifest, media_type)
        return self._blob_path(layer["digest"]).read_text() if layer else None

    def _config_of(self, rec: _Record) -> dict[str, Any]:
        """The config blob of a manifest."""
        return json.loads(self._blob_path(rec.manifest["config"]["digest"]).read_bytes())

    def _remove_unused(self, layers: list[dict[str, Any]]) -> None:
        """Layer.Remove / RemoveLayers: delete blobs no stored manifest refers to."""
        with self._lock:
            used = {
                lay["digest"]
                for r in self._records.values()
                for lay in [*r.manifest["layers"], r.manifest["config"]]
            }
            for layer in layers:
                d = layer["digest"]
                if d and d not in used:
                    self._blob_path(d).unlink(missing_ok=True)
                    self.blobs.pop(d, None)
                    self._gguf_cache.pop(d, None)

    def _write_manifest(self, n: Name, config: dict[str, Any], layers: list[dict]) -> _Record:
        """manifest.WriteManifest: Go-encoded JSON plus newline; digest is its sha256."""
        m = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config, "layers": layers}
        raw = (go_json(m) + "\n").encode()
        return self._put_record(n, raw)

    def _put_record(self, n: Name, raw: bytes) -> _Record:
        """Store manifest bytes under a name and refresh the public ``manifests`` view."""
        m = json.loads(raw)
        rec = _Record(raw, m, sha256(raw).hexdigest(), datetime.now().astimezone())
        with self._lock:
            self._records[n] = rec
            self.manifests[n.short] = {**m, "digest": rec.digest}
        return rec

    # -- create
    def _create(self, h: _Handler) -> None:
        """POST /api/create: validate up front, then stream the work as the real server does."""
        r = h.read_json("api.CreateRequest", _CREATE_SCHEMA)
        files = r.get("files")
        adapters = r.get("adapters")
        for group in (files, r.get("draft_files"), adapters):
            _validate_create_files(group or {})
        if r.get("draft_quantize") and not r.get("draft_files"):
            raise _HTTPError(400, "--draft-quantize requires a DRAFT model")
        n = parse_name(r.get("model") or r.get("name") or "")
        if not n.valid:
            raise _HTTPError(400, ERR_INVALID_NAME)
        n = self._canonical(n)
        file_type = self._detect_type(files or {})
        quantize = r.get("quantize") or r.get("quantization")
        if file_type == "gguf" or (file_type == "" and r.get("from")):
            if quantize:
                raise _HTTPError(400, ERR_QUANTIZE_GGUF)
            if r.get("draft_quantize"):
                raise _HTTPError(400, ERR_DRAFT_QUANTIZE_GGUF)
        if self.refuse_adapters and adapters:
            raise _HTTPError(400, ADAPTERS_REFUSED)
        with self._lock:
            inject = self.fail_create > 0
            if inject:
                self.fail_create -= 1
        events = self._inject_create() if inject else self._create_events(r, n, file_type)
        h.send_events(events, r.get("stream") is not False)

    def _inject_create(self) -> Iterator[Event]:
        """fail_create: one status line, then an internal error."""
        yield {"status": "parsing GGUF"}
        yield _Fail(500, INJECTED_CREATE)

    def _detect_type(self, files: dict[str, str]) -> str:
        """detectModelTypeFromFiles: by extension, else by the blob's GGUF magic."""
        found = ""
        for fp in sorted(files):
            if fp.endswith(".safetensors"):
                t = "safetensors"
            elif fp.endswith(".gguf"):
                t = "gguf"
            else:
                path = self._blob_path(files[fp])
                try:
                    head = path.read_bytes()[:4] if path.is_file() else None
                except OSError as e:
                    raise _HTTPError(400, f"read {fp}: {e}") from None
                if head is None:
                    raise _HTTPError(400, f"read {fp}: open {path}: no such file or directory")
                t = "gguf" if head in (b"GGUF", b"FUGG") else ""
            if t and found and t != found:
                raise _HTTPError(400, f"{ERR_MIXED}: found both {found} and {t} inputs")
            found = found or t
        return found

    def _create_events(self, r: dict[str, Any], n: Name, file_type: str) -> Iterator[Event]:
        """The create goroutine: gather layers, apply template/system/params, write manifest."""
        with self._lock:
            old = self._records.get(n)
        config: dict[str, Any] = {}
        for key in ("renderer", "parser", "requires"):
            if r.get(key):
                config[key] = r[key]
        if file_type == "safetensors":
            if r.get("from"):
                yield _Fail(400, ERR_SAFETENSORS_FROM)
            elif r.get("adapters"):
                yield _Fail(400, ERR_SAFETENSORS_ADAPTERS)
            else:
                yield _Fail(500, "safetensors (MLX) imports are not emulated by OllamaDouble")
            return
        if r.get("draft_files"):
            yield _Fail(500, "draft models are not emulated by OllamaDouble")
            return
        base: list[tuple[dict[str, Any], str]] = []
        if r.get("from"):
            src = parse_name(_ref_base(r["from"]))
            if not src.valid:
                yield _Fail(400, ERR_INVALID_NAME)
                return
            with self._lock:
                src_rec = self._records.get(src)
            if src_rec is None:
                yield {"status": "pulling manifest"}
                yield _Fail(500, ERR_PULL_MISSING)
                return
            src_cfg = self._config_of(src_rec)
            for key in ("renderer", "parser", "requires", "model_format", "capabilities"):
                if key not in config and src_cfg.get(key):
                    config[key] = src_cfg[key]
            for layer in src_rec.manifest["layers"]:
                new = {k: layer[k] for k in ("mediaType", "digest", "size")}
                new["from"] = src.short
                if layer.get("name"):
                    new["name"] = layer["name"]
                base.append((new, f"using existing layer {layer['digest']}"))
        elif r.get("files") is not None:
            result = yield from self._gguf_layers(r["files"], adapter=False)
            if isinstance(result, _Fail):
                yield result
                return
            base += result
        else:
            yield _Fail(400, ERR_NEITHER)
            return
        if r.get("adapters") is not None and not self.refuse_adapters:
            result = yield from self._gguf_layers(r["adapters"], adapter=True)
            if isinstance(result, _Fail):
                yield _Fail(400, result.message)
                return
            base += result
        yield from self._create_model(r, n, base, config, old)

    def _gguf_layers(
        self, files: dict[str, str], *, adapter: bool
    ) -> Generator[Event, None, list[tuple[dict[str, Any], str]] | _Fail]:
        """convertModelFromFiles for GGUF: "parsing GGUF" per file (sorted); returns layers."""
        try:
            kind = self._detect_type(files)
        except _HTTPError as e:
            return _Fail(500, e.message)
        if kind == "safetensors":
            return _Fail(400, ERR_ONLY_GGUF)
        if kind != "gguf":
            return _Fail(400, ERR_UNKNOWN_TYPE)
        if len(files) > 1 and adapter:
            return _Fail(400, ERR_ONE_ADAPTER)
        layers: list[tuple[dict[str, Any], str]] = []
        for fp in sorted(files):
            digest = files[fp]
            yield {"status": "parsing GGUF"}
            path = self._blob_path(digest)
            if not path.is_file():
                return _Fail(500, f"open {path}: no such file or directory")
            with path.open("rb") as f:
                head = f.read(512)
            if len(head) < 4:
                return _Fail(500, "internal server error")
            if head[:4] not in (b"GGUF", b"FUGG"):
                return _Fail(400, ERR_ONLY_GGUF)
            try:
                info = self._gguf_info(digest)
            except Exception as e:  # noqa: BLE001 - ggml.Decode errors are 500s
                return _Fail(500, str(e))
            media = MT_MODEL
            if info.kind == "adapter":
                media = MT_ADAPTER
            elif info.is_projector:
                media = MT_PROJECTOR
            if media == MT_ADAPTER and self.refuse_adapters:
                return _Fail(400, ADAPTERS_REFUSED)
            layer = {"mediaType": media, "digest": digest, "size": path.stat().st_size, "from": fp}
            layers.append((layer, f"using existing layer {digest}"))
        return layers

    def _create_model(
        self,
        r: dict[str, Any],
        n: Name,
        base: list[tuple[dict[str, Any], str]],
        config: dict[str, Any],
        old: _Record | None,
    ) -> Iterator[Event]:
        """createModel: config from the GGUF, extra layers, statuses, manifest, prune."""
        layers = list(base)
        families: list[str] | None = None
        for layer, _status in layers:
            if layer["mediaType"] != MT_MODEL:
                continue
            info = self._gguf_info(layer["digest"])
            config.setdefault("model_format", "gguf")
            config.setdefault("model_family", info.architecture)
            config.setdefault("model_type", human_number(info.parameter_count))
            config.setdefault("file_type", info.file_type)
            families = [*(families or []), info.architecture]

        def replace(media_type: str) -> None:
            """removeLayer: drop layers of a type (their blobs go if nothing else uses them)."""
            gone = [lay for lay, _ in layers if lay["mediaType"] == media_type]
            layers[:] = [(lay, s) for lay, s in layers if lay["mediaType"] != media_type]
            self._remove_unused(gone)

        if template := r.get("template"):
            replace(MT_TEMPLATE)
            if err := _template_error(template):
                yield _Fail(400, f"{ERR_BAD_TEMPLATE}: {err}")
                return
            layers.append(self._new_layer(template.encode(), MT_TEMPLATE))
        if system := r.get("system"):
            replace(MT_SYSTEM)
            layers.append(self._new_layer(system.encode(), MT_SYSTEM))
        lic = r.get("license")
        for text in [lic] if isinstance(lic, str) else lic or []:
            if text:
                layers.append(self._new_layer(str(text).encode(), MT_LICENSE))
        params = dict(r.get("parameters") or {})
        for layer, _ in layers:
            if layer["mediaType"] == MT_PARAMS:
                existing = json.loads(self._blob_path(layer["digest"]).read_bytes())
                for k, v in existing.items():
                    params.setdefault(k, v)
        if params:
            replace(MT_PARAMS)
            data = (go_json(params, sort_keys=True) + "\n").encode()
            layers.append(self._new_layer(data, MT_PARAMS))
        if msgs := r.get("messages"):
            replace(MT_MESSAGES)
            data = (go_json([_go_message(m) for m in msgs]) + "\n").encode()
            layers.append(self._new_layer(data, MT_MESSAGES))
        cfg = {
            "model_format": config.get("model_format", ""),
            "model_family": config.get("model_family", ""),
            "model_families": families,
            "model_type": config.get("model_type", ""),
            "file_type": config.get("file_type", ""),
        }
        for key in ("renderer", "parser", "requires", "capabilities"):
            if config.get(key):
                cfg[key] = config[key]
        cfg |= {"architecture": "amd64", "os": "linux"}
        config_layer, _ = self._new_layer((go_json(cfg) + "\n").encode(), MT_CONFIG)
        for _layer, status in layers:
            yield {"status": status}
        yield {"status": "writing manifest"}
        self._write_manifest(n, config_layer, [lay for lay, _ in layers])
        if old is not None:
            self._remove_unused([*old.manifest["layers"], old.manifest["config"]])
        yield {"status": "success"}

    # -- show / copy / delete
    def _show(self, h: _Handler) -> None:
        """POST /api/show."""
        r = h.read_json("api.ShowRequest", {"model": str, "name": str, "verbose": bool})
        raw = r.get("model") or r.get("name") or ""
        if not raw:
            raise _HTTPError(400, "model is required")
        n = parse_name(_ref_base(raw))
        if not _ref_base(raw) or not n.valid:
            raise _HTTPError(400, ERR_INVALID_NAME)
        n = self._canonical(n)
        with self._lock:
            rec = self._records.get(n)
        model_layer = _first_layer(rec.manifest, MT_MODEL) if rec else None
        if rec is None or model_layer is None:
            raise _HTTPError(404, f"model '{n.short}' not found")
        h.send_json(200, self._show_response(n, rec, bool(r.get("verbose"))))

    def _show_response(self, n: Name, rec: _Record, verbose: bool) -> dict[str, Any]:
        """GetModelInfo: modelfile, parameters, template, details, model_info, tensors..."""
        m = rec.manifest
        cfg = self._config_of(rec)
        model_layer = _first_layer(m, MT_MODEL)
        assert model_layer is not None
        info = self._gguf_info(model_layer["digest"])
        go_template = self._text_layer(rec, MT_TEMPLATE)
        system = self._text_layer(rec, MT_SYSTEM) or ""
        licenses = [
            self._blob_path(lay["digest"]).read_text()
            for lay in m["layers"]
            if lay["mediaType"] == MT_LICENSE
        ]
        params_text = self._text_layer(rec, MT_PARAMS)
        params: dict[str, Any] = json.loads(params_text) if params_text else {}
        messages_text = self._text_layer(rec, MT_MESSAGES)
        messages = json.loads(messages_text) if messages_text else []

        lines = [f"FROM {self._blob_path(model_layer['digest'])}"]
        for lay in m["layers"]:
            if lay["mediaType"] == MT_ADAPTER:
                lines.append(f"ADAPTER {_quote_modelfile(str(self._blob_path(lay['digest'])))}")
        for lay in m["layers"]:
            if lay["mediaType"] == MT_PROJECTOR:
                lines.append(f"FROM {self._blob_path(lay['digest'])}")
        lines.append(f"TEMPLATE {_quote_modelfile(go_template or _DEFAULT_TEMPLATE)}")
        if system:
            lines.append(f"SYSTEM {_quote_modelfile(system)}")
        for key in ("renderer", "parser"):
            if cfg.get(key):
                lines.append(f"{key.upper()} {_quote_modelfile(cfg[key])}")
        param_lines = []
        for k in sorted(params):
            for v in params[k] if isinstance(params[k], list) else [params[k]]:
                lines.append(f"PARAMETER {k} {_quote_modelfile(go_v(v))}")
                param_lines.append(f"{k:<30} {go_v(v, sharp=True)}")
        lines += [f"LICENSE {_quote_modelfile(text)}" for text in licenses]
        lines += [f"MESSAGE {x['role']} {_quote_modelfile(x['content'])}" for x in messages]
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {n.short}\n\n" + "".join(line + "\n" for line in lines)
        )

        # selectedModelTemplate: the GGUF's own template only in native (llama-server) chat.
        native_template = "" if cfg.get("renderer") or cfg.get("parser") else info.chat_template
        model_info: dict[str, Any] = {}
        for k, v in info.kv.items():
            if k in ("general.name", "tokenizer.chat_template"):
                continue
            model_info[k] = [] if isinstance(v, list) and len(v) > 5 and not verbose else v
        model_info["general.parameter_count"] = info.parameter_count
        caps = info.capabilities()
        if _first_layer(m, MT_PROJECTOR):
            caps.append("vision")
        caps += _template_caps(go_template)
        resp: dict[str, Any] = {
            "license": "\n".join(licenses),
            "modelfile": modelfile,
            "parameters": "\n".join(param_lines),
            "template": go_template or native_template or _DEFAULT_TEMPLATE,
            "system": system,
            "details": {
                "parent_model": model_layer.get("from", ""),
                "format": cfg.get("model_format", ""),
                "family": cfg.get("model_family", ""),
                "families": cfg.get("model_families"),
                "parameter_size": cfg.get("model_type", ""),
                "quantization_level": cfg.get("file_type", ""),
            },
            "model_info": dict(sorted(model_info.items())),
            "tensors": info.tensors,
            "capabilities": caps,
            "modified_at": rec.modified.isoformat(),
        }
        if messages:
            resp["messages"] = [{"role": x["role"], "content": x["content"]} for x in messages]
        return {k: v for k, v in resp.items() if v not in ("", None, []) or k == "model_info"}

    def _copy(self, h: _Handler) -> None:
        """POST /api/copy: the destination gets the source's manifest bytes."""
        r = h.read_json("api.CopyRequest", {"source": str, "destination": str})
        source, dest = r.get("source") or "", r.get("destination") or ""
        src = parse_name(source)
        if not src.valid:
            raise _HTTPError(400, f"source {go_quote(source)} is invalid")
        dst = parse_name(dest)
        if not dst.valid:
            raise _HTTPError(400, f"destination {go_quote(dest)} is invalid")
        src, dst = self._canonical(src), self._canonical(dst)
        with self._lock:
            inject = self.fail_copy > 0
            if inject:
                self.fail_copy -= 1
            rec = self._records.get(src)
        if inject:
            raise _HTTPError(500, INJECTED_COPY)
        if src != dst:  # CopyModel returns early for the same name, even a missing one
            if rec is None:
                raise _HTTPError(404, f"model {go_quote(source)} not found")
            self._put_record(dst, rec.raw)
        h.send_bytes(200, b"", "text/plain")

    def _delete(self, h: _Handler) -> None:
        """DELETE /api/delete: drop the manifest, then blobs nothing else uses."""
        r = h.read_json("api.DeleteRequest", {"model": str, "name": str})
        raw = r.get("model") or r.get("name") or ""
        if not raw.strip():
            raise _HTTPError(400, "model is required")
        n = parse_name(_ref_base(raw))
        if not n.valid:
            raise _HTTPError(400, f"name {go_quote(raw)} is invalid")
        n = self._canonical(n)
        with self._lock:
            rec = self._records.pop(n, None)
            if rec is not None:
                self.manifests.pop(n.short, None)
        if rec is None:
            raise _HTTPError(404, f"model '{raw}' not found")
        self._remove_unused([*rec.manifest["layers"], rec.manifest["config"]])
        h.send_bytes(200, b"", "text/plain")

    # -- generate / chat
    def _resolve_for_inference(self, raw: str, empty_status: int) -> tuple[_Record, str]:
        """Model lookup for generate/chat with their error texts; returns record and blob."""
        base = _ref_base(raw)
        if not base:
            if empty_status == 404:
                raise _HTTPError(404, f"model '{raw}' not found")
            raise _HTTPError(400, "model is required")
        n = parse_name(base)
        if not n.valid:
            raise _HTTPError(400, ERR_INVALID_NAME)
        with self._lock:
            rec = self._records.get(self._canonical(n))
        if rec is None:
            raise _HTTPError(404, f"model '{raw}' not found")
        layer = _first_layer(rec.manifest, MT_MODEL)
        return rec, layer["digest"] if layer else ""

    def _generate(self, h: _Handler) -> None:
        """POST /api/generate."""
        r = h.read_json("api.GenerateRequest", _GEN_SCHEMA)
        model = r.get("model") or ""
        rec, blob = self._resolve_for_inference(model, 404)
        if not blob:
            raise _HTTPError(400, f"{go_quote(model)} does not support generate")
        if r.get("raw") and (r.get("template") or r.get("system") or r.get("context")):
            raise _HTTPError(400, "raw mode does not support template, system, or context")
        prompt = r.get("prompt") or ""
        if not prompt:
            h.send_json(200, _done(model, {"response": ""}, "load"))
            return
        msgs = self._messages(rec, r.get("system"), [{"role": "user", "content": prompt}])
        events = self._run(rec, blob, model, msgs, prompt if r.get("raw") else None, r, "gen")
        h.send_events(events, r.get("stream") is not False)

    def _chat(self, h: _Handler) -> None:
        """POST /api/chat."""
        r = h.read_json("api.ChatRequest", _GEN_SCHEMA)
        model = r.get("model") or ""
        rec, blob = self._resolve_for_inference(model, 400)
        if not blob:
            raise _HTTPError(400, f"{go_quote(model)} does not support chat")
        req_msgs = [
            {"role": str(m.get("role", "")).lower(), "content": str(m.get("content") or "")}
            for m in r.get("messages") or []
            if isinstance(m, dict)
        ]
        if not req_msgs:
            h.send_json(200, _done(model, {"message": _assistant("")}, "load"))
            return
        system = next((m["content"] for m in req_msgs if m["role"] == "system"), None)
        rest = [m for m in req_msgs if m["role"] != "system"]
        msgs = self._messages(rec, system, rest)
        events = self._run(rec, blob, model, msgs, None, r, "chat")
        h.send_events(events, r.get("stream") is not False)

    def _messages(
        self, rec: _Record, system: str | None, msgs: list[dict[str, str]]
    ) -> list[dict[str, str]]:
        """System (request's, else the model's), the model's stored messages, then these."""
        system = system or self._text_layer(rec, MT_SYSTEM) or ""
        stored = self._text_layer(rec, MT_MESSAGES)
        out = [{"role": "system", "content": system}] if system else []
        out += [{"role": m["role"], "content": m["content"]} for m in json.loads(stored or "[]")]
        return out + msgs

    def _run(
        self,
        rec: _Record,
        blob: str,
        model: str,
        msgs: list[dict[str, str]],
        raw_prompt: str | None,
        r: dict[str, Any],
        kind: str,
    ) -> Iterator[Event]:
        """Produce the reply (echo or llama.cpp) and emit it as response chunks + a final one."""
        params_text = self._text_layer(rec, MT_PARAMS)
        opts = {**json.loads(params_text or "{}"), **(r.get("options") or {})}
        stops = opts.get("stop") or []
        stops = [stops] if isinstance(stops, str) else [str(s) for s in stops]
        num_predict = int(opts.get("num_predict", -1) or -1)
        t0 = time.monotonic_ns()
        if self.active_runner == "llama_cpp":
            text, reason, n_prompt, n_eval = self._llama(blob, msgs, raw_prompt, num_predict, stops)
        else:
            text, reason, n_prompt, n_eval = _echo(blob, msgs, raw_prompt, num_predict, stops)
        elapsed = max(time.monotonic_ns() - t0, 1)
        pieces = re.findall(r"\s*\S+|\s+$", text) or [""]
        metrics = {
            "total_duration": elapsed,
            "load_duration": 1,
            "prompt_eval_count": n_prompt,
            "prompt_eval_duration": 1,
            "eval_count": n_eval,
            "eval_duration": elapsed,
        }
        stream = r.get("stream") is not False
        if not stream:
            body = {"response": text} if kind == "gen" else {"message": _assistant(text)}
            yield {**_done(model, body, reason), **metrics}
            return
        for piece in pieces:
            body = {"response": piece} if kind == "gen" else {"message": _assistant(piece)}
            yield {"model": model, "created_at": _utcnow(), **body, "done": False}
        body = {"response": ""} if kind == "gen" else {"message": _assistant("")}
        yield {**_done(model, body, reason), **metrics}

    def _llama(
        self,
        blob: str,
        msgs: list[dict[str, str]],
        raw_prompt: str | None,
        num_predict: int,
        stops: list[str],
    ) -> tuple[str, str, int, int]:
        """Greedy generation with llama-cpp-python (GGUF's own chat template for messages)."""
        import llama_cpp

        max_tokens = num_predict if num_predict > 0 else 32
        with self._llama_lock:
            llm = self._llamas.get(blob)
            if llm is None:
                llm = _load_llama(llama_cpp, self._blob_path(blob))
                self._llamas[blob] = llm
            kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0, "top_k": 1}
            if stops:
                kwargs["stop"] = stops
            if raw_prompt is not None:
                out = llm.create_completion(raw_prompt, **kwargs)
                text = out["choices"][0]["text"]
            else:
                out = llm.create_chat_completion(messages=msgs, **kwargs)
                text = out["choices"][0]["message"]["content"] or ""
        reason = "length" if out["choices"][0].get("finish_reason") == "length" else "stop"
        usage = out.get("usage") or {}
        return text, reason, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)


# --------------------------------------------------------------------------- small helpers


def _load_llama(llama_cpp: Any, path: Path) -> Any:
    """llama_cpp.Llama(n_ctx 2048, quiet) without extra CPU buffer types (repacked/AMX copies
    segfault here, as guardian/export/parity.py also found)."""
    capi: Any = getattr(llama_cpp, "llama_cpp", None)
    defaults = getattr(capi, "llama_model_default_params", None)
    if defaults is not None:

        def plain_buffers() -> Any:
            """Default model params with use_extra_bufts off."""
            params = defaults()
            params.use_extra_bufts = False
            return params

        capi.llama_model_default_params = plain_buffers  # read once, by Llama.__init__
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=2048, verbose=False, seed=0)
    finally:
        if defaults is not None:
            capi.llama_model_default_params = defaults


def _first_layer(manifest: dict[str, Any], media_type: str) -> dict[str, Any] | None:
    """The first layer of a media type in a manifest."""
    return next((lay for lay in manifest["layers"] if lay["mediaType"] == media_type), None)


def _template_caps(template: str | None) -> list[str]:
    """Capabilities a Go template implies (tools, insert)."""
    caps = []
    if template and re.search(r"\.Tools\b", template):
        caps.append("tools")
    if template and re.search(r"\.Suffix\b", template):
        caps.append("insert")
    return caps


def _validate_create_files(files: dict[str, Any]) -> None:
    """validateCreateFiles / validateCreateFilePath (fs.ValidPath, no backslash or colon)."""
    for fp in sorted(files):
        digest = files[fp]
        parts = fp.split("/")
        bad = (
            fp in ("", ".")
            or any(p in ("", ".", "..") for p in parts)
            or any(c in fp for c in "\\:")
        )
        if bad:
            raise _HTTPError(400, f"{ERR_FILE_PATH}: {fp}")
        if not digest:
            raise _HTTPError(400, ERR_INVALID_DIGEST)
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise _HTTPError(400, f"invalid digest for {fp}: {ERR_INVALID_DIGEST}")


def _go_message(m: Any) -> dict[str, Any]:
    """api.Message as Go stores it: role lowercased, empty optional fields omitted."""
    m = m if isinstance(m, dict) else {}
    out: dict[str, Any] = {"role": str(m.get("role", "")).lower(), "content": m.get("content", "")}
    for key in ("thinking", "images", "tool_calls", "tool_name", "tool_call_id"):
        if m.get(key):
            out[key] = m[key]
    return out


def _utcnow() -> str:
    """time.Now().UTC() as Go's RFC 3339 JSON."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _assistant(content: str) -> dict[str, str]:
    """An assistant message."""
    return {"role": "assistant", "content": content}


def _done(model: str, body: dict[str, Any], reason: str) -> dict[str, Any]:
    """A final (done) generate/chat response object."""
    return {"model": model, "created_at": _utcnow(), **body, "done": True, "done_reason": reason}


def _echo(
    blob: str,
    msgs: list[dict[str, str]],
    raw_prompt: str | None,
    num_predict: int,
    stops: list[str],
) -> tuple[str, str, int, int]:
    """Deterministic reply "double:<12 hex of the model blob>: <first words of the prompt>"."""
    prompt = raw_prompt
    if prompt is None:
        prompt = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
    words = [f"double:{blob.removeprefix('sha256:')[:12]}:", *prompt.split()[:8]]
    reason = "stop"
    if 0 < num_predict < len(words):
        words, reason = words[:num_predict], "length"
    text = " ".join(words)
    for s in stops:
        if s and s in text:
            text, reason = text[: text.index(s)], "stop"
    sources = [raw_prompt] if raw_prompt is not None else [m["content"] for m in msgs]
    return text, reason, sum(len(x.split()) for x in sources), len(text.split())


__all__ = ["ADAPTERS_REFUSED", "DEFAULT_VERSION", "GGUFInfo", "Name", "OllamaDouble", "read_gguf"]
