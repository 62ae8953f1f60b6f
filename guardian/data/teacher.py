"""Teacher mode: ask an OpenAI-compatible or Ollama chat endpoint for RAFT question/answer pairs.

One request per oracle document; the reply must be a JSON list of `{"question", "answer"}`
objects. Any transport or protocol failure is a StepError naming the endpoint and what went
wrong: synthesis never falls back to templates behind the user's back. What the teacher says
is not trusted either: the caller runs the same grounding checks as on template answers.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from pydantic import Field

from guardian.core.schema import StrictModel
from guardian.data.raft import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE
from guardian.errors import ConfigError, StepError

__all__ = ["QAPair", "Teacher", "TeacherParams", "parse_pairs"]

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You write training data that teaches a small model about one codebase. Use only facts "
    "stated in the document you are given."
)
USER_PROMPT = """Document:
{document}

Write {n} different questions a developer could ask about `{qualname}` that this document
answers. For each, write an answer that first quotes the supporting text from the document
word for word between {begin} and {end}, then ends with a last line `{tag} ` followed by the
short final answer. Reply with only a JSON list of objects with the keys "question" and
"answer"."""
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?|\n?```\s*$")


class TeacherParams(StrictModel):
    """Where the teacher lives and how much of it to use.

    `url` is the server root (e.g. `http://127.0.0.1:11434` for Ollama); `api_key_env` names
    an environment variable holding a bearer token (never the token itself).
    """

    url: str = Field(pattern=r"^https?://")
    api: Literal["openai", "ollama"] = "openai"
    model: str = Field(min_length=1)
    questions_per_chunk: int = Field(default=3, ge=1, le=20)
    max_calls: int = Field(default=200, ge=1)
    timeout: float = Field(default=120.0, gt=0)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    api_key_env: str | None = None


@dataclass(frozen=True)
class QAPair:
    """One question and its (unchecked) quoting answer from the teacher."""

    question: str
    answer: str


def parse_pairs(content: str, where: str) -> list[QAPair]:
    """Parse a teacher reply into pairs; a reply that is not the asked-for JSON is a StepError."""
    text = _FENCE.sub("", content.strip()).strip()
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepError(f"{where}: reply is not JSON ({exc.msg}): {text[:80]!r}") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list):
        raise StepError(f"{where}: reply is not a JSON list of question/answer objects")
    pairs: list[QAPair] = []
    for i, item in enumerate(data):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("question"), str)
            and isinstance(item.get("answer"), str)
        ):
            raise StepError(f"{where}: item {i} lacks string 'question' and 'answer' fields")
        pairs.append(QAPair(item["question"].strip(), item["answer"].strip()))
    return pairs


class Teacher:
    """A chat endpoint that writes question/answer pairs for one document at a time."""

    def __init__(self, params: TeacherParams) -> None:
        self.params = params
        self.calls = 0
        root = params.url.rstrip("/")
        self.endpoint = (
            f"{root}/api/chat" if params.api == "ollama" else f"{root}/v1/chat/completions"
        )
        self._headers = {"Content-Type": "application/json"}
        if params.api_key_env:
            token = os.environ.get(params.api_key_env)
            if not token:
                raise ConfigError(
                    f"teacher.api_key_env: environment variable {params.api_key_env} is not set"
                )
            self._headers["Authorization"] = f"Bearer {token}"

    @property
    def exhausted(self) -> bool:
        """Whether the call budget (`max_calls`) is used up."""
        return self.calls >= self.params.max_calls

    def ask(self, document: str, qualname: str) -> list[QAPair]:
        """Ask for `questions_per_chunk` pairs about the unit a document describes."""
        prompt = USER_PROMPT.format(
            document=document,
            n=self.params.questions_per_chunk,
            qualname=qualname,
            begin=BEGIN_QUOTE,
            end=END_QUOTE,
            tag=ANSWER_TAG,
        )
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ]
        self.calls += 1
        reply = self._post(self._body(messages))
        content = self._content(reply)
        log.debug("teacher.reply", endpoint=self.endpoint, chars=len(content))
        return parse_pairs(content, f"teacher {self.endpoint} ({qualname})")

    def _body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        p = self.params
        if p.api == "ollama":
            return {
                "model": p.model,
                "messages": messages,
                "stream": False,
                "options": {"temperature": p.temperature, "seed": 0},
            }
        return {"model": p.model, "messages": messages, "temperature": p.temperature, "seed": 0}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode(), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.params.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace").strip()
            raise StepError(f"teacher {self.endpoint}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise StepError(
                    f"teacher {self.endpoint}: no reply within {self.params.timeout:g} s"
                ) from None
            raise StepError(f"teacher {self.endpoint}: cannot connect ({exc.reason})") from None
        except TimeoutError:
            raise StepError(
                f"teacher {self.endpoint}: no reply within {self.params.timeout:g} s"
            ) from None
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StepError(f"teacher {self.endpoint}: response body is not JSON") from None
        if not isinstance(data, dict):
            raise StepError(f"teacher {self.endpoint}: response body is not a JSON object")
        return data

    def _content(self, reply: dict[str, Any]) -> str:
        try:
            if self.params.api == "ollama":
                content = reply["message"]["content"]
            else:
                content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            shape = "message.content" if self.params.api == "ollama" else "choices[0].message"
            raise StepError(f"teacher {self.endpoint}: response has no {shape}") from None
        if not isinstance(content, str):
            raise StepError(f"teacher {self.endpoint}: message content is not a string")
        return content
