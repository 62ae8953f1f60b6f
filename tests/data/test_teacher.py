from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from guardian.core.jsonl import read_jsonl, write_jsonl
from guardian.core.schema import Sample
from guardian.data.teacher import Teacher, TeacherParams, parse_pairs
from guardian.errors import ConfigError, StepError
from guardian.steps.base import StepContext
from guardian.steps.synthesize import Params, run
from tests.steps.test_synthesize import make_chunks

B, E = "##begin_quote##", "##end_quote##"
Reply = Callable[[dict[str, Any]], tuple[int, bytes]]


@dataclass
class FakeServer:
    """A real HTTP server on 127.0.0.1 answering both chat APIs with `reply(body)`."""

    url: str
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    reply: Reply = lambda body: (200, b"{}")  # noqa: E731


def chat_reply(api: str, content: str) -> bytes:
    if api == "ollama":
        return json.dumps({"message": {"role": "assistant", "content": content}}).encode()
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": content}}]}
    ).encode()


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    state = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state.requests.append((self.path, dict(self.headers), body))
            status, data = state.reply(body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


PAIRS = [{"question": "What is it?", "answer": f"It says {B}x{E}.\n<ANSWER>: x"}]


@pytest.mark.parametrize("api", ["openai", "ollama"])
def test_teacher_asks_each_api_and_parses_pairs(
    server: FakeServer, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEACHER_TOKEN", "s3cret")
    server.reply = lambda body: (200, chat_reply(api, json.dumps(PAIRS)))
    teacher = Teacher(
        TeacherParams(url=server.url + "/", api=api, model="tiny", api_key_env="TEACHER_TOKEN")
    )
    pairs = teacher.ask("doc text", "Cart.total")
    assert [(p.question, p.answer) for p in pairs] == [(PAIRS[0]["question"], PAIRS[0]["answer"])]
    path, headers, body = server.requests[0]
    assert path == ("/api/chat" if api == "ollama" else "/v1/chat/completions")
    assert headers["Authorization"] == "Bearer s3cret"
    assert body["model"] == "tiny"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "doc text" in body["messages"][1]["content"]
    assert "`Cart.total`" in body["messages"][1]["content"]
    if api == "ollama":
        assert body["stream"] is False and body["options"]["temperature"] == 0.0
    else:
        assert body["temperature"] == 0.0
    assert teacher.calls == 1


def test_replies_in_fences_or_wrapped_objects_are_accepted() -> None:
    assert len(parse_pairs("```json\n" + json.dumps(PAIRS) + "\n```", "t")) == 1
    assert len(parse_pairs(json.dumps({"pairs": PAIRS}), "t")) == 1
    with pytest.raises(StepError, match=r"^t: reply is not JSON \(Expecting value\): 'Sure!"):
        parse_pairs("Sure! Here you go", "t")
    with pytest.raises(StepError, match="^t: reply is not a JSON list"):
        parse_pairs('{"a": 1}', "t")
    with pytest.raises(StepError, match="^t: item 0 lacks string 'question' and 'answer' fields"):
        parse_pairs('[{"question": "q"}]', "t")


@pytest.mark.parametrize(
    ("status", "data", "message"),
    [
        (500, b"boom", r"HTTP 500: boom"),
        (200, b"<html>", r"response body is not JSON"),
        (200, b"[1]", r"response body is not a JSON object"),
        (200, b'{"choices": []}', r"response has no choices\[0\]\.message"),
        (200, b'{"choices": [{"message": {"content": 3}}]}', r"message content is not a string"),
    ],
)
def test_protocol_failures_are_one_clear_line(
    server: FakeServer, status: int, data: bytes, message: str
) -> None:
    server.reply = lambda body: (status, data)
    teacher = Teacher(TeacherParams(url=server.url, model="m"))
    with pytest.raises(StepError, match=rf"^teacher {server.url}/v1/chat/completions: {message}"):
        teacher.ask("doc", "f")


def test_unreachable_and_slow_teachers_fail_clearly(server: FakeServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = Teacher(TeacherParams(url=f"http://127.0.0.1:{port}", api="ollama", model="m"))
    with pytest.raises(StepError, match=r"/api/chat: cannot connect \("):
        dead.ask("doc", "f")

    def slow(body: dict[str, Any]) -> tuple[int, bytes]:
        time.sleep(1.0)
        return 200, chat_reply("openai", "[]")

    server.reply = slow
    teacher = Teacher(TeacherParams(url=server.url, model="m", timeout=0.2))
    with pytest.raises(StepError, match=r"no reply within 0\.2 s"):
        teacher.ask("doc", "f")


def test_missing_api_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="^teacher.api_key_env: environment variable NOPE_TOKEN"):
        Teacher(TeacherParams(url="http://127.0.0.1:1", model="m", api_key_env="NOPE_TOKEN"))


def grounded_teacher(body: dict[str, Any]) -> tuple[int, bytes]:
    """Quote the document's summary line once faithfully and once made up."""
    prompt = body["messages"][1]["content"]
    document = prompt.split("Document:\n", 1)[1].split("\n\nWrite ", 1)[0]
    summary = next(line for line in document.splitlines() if line.startswith("Compute"))
    pairs = [
        {"question": "What is it for?", "answer": f"It says {B}{summary}{E}\n<ANSWER>: {summary}"},
        {"question": "Is it fast?", "answer": f"It says {B}It is very fast.{E}\n<ANSWER>: yes"},
        {"question": "No quote?", "answer": "<ANSWER>: maybe"},
    ]
    return 200, chat_reply("openai", json.dumps(pairs))


def synthesize(tmp_path: Path, params: Params) -> tuple[Path, dict[str, Any]]:
    src = tmp_path / "chunks"
    write_jsonl(src / "chunks.jsonl", make_chunks(4))
    out = tmp_path / "out"
    out.mkdir()
    run(StepContext(repo=tmp_path, out_dir=out, home=tmp_path, inputs={"chunks": src}), params)
    return out, json.loads((out / "card.json").read_text())


@pytest.mark.parametrize("raft", [True, False])
def test_synthesis_keeps_only_grounded_teacher_answers(
    server: FakeServer, tmp_path: Path, raft: bool
) -> None:
    server.reply = grounded_teacher
    teacher = TeacherParams(url=server.url, model="m", max_calls=3)
    out, card = synthesize(tmp_path, Params(raft=raft, teacher=teacher))
    assert card["teacher"] == {"calls": 3, "pairs": 9, "rejected": 6}
    assert sum(card["question_types"]["teacher"].values()) == 3
    samples = [s for split in ("train", "val", "test")
               for s in read_jsonl(out / f"{split}.jsonl", Sample)]  # fmt: skip
    taught = [s for s in samples if s.metadata["question_type"] == "teacher"]
    assert len(taught) == 3 and len(server.requests) == 3
    for s in taught:
        assert s.input.endswith("What is it for?")
        if raft:
            assert s.output.startswith("It says ##begin_quote##Compute the value number")
            assert s.metadata["oracle_ids"] == [s.metadata["chunk_id"]]
        else:
            assert s.output.startswith("Compute the value number") and B not in s.output


def test_teacher_failure_stops_synthesis(server: FakeServer, tmp_path: Path) -> None:
    server.reply = lambda body: (503, b"model loading")
    params = Params(teacher=TeacherParams(url=server.url, model="m"))
    with pytest.raises(StepError, match=r"HTTP 503: model loading"):
        synthesize(tmp_path, params)
    assert not (tmp_path / "out" / "train.jsonl").exists()
