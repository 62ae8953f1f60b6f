"""The Ollama target against the in-process double, through the real `ollama` client:
publish tags `<name>:<run>` and `:latest` (old latest -> `:prev`), rollback swaps exact
digests, and every failure leaves the tags as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.errors import ModelError
from guardian.serving.ollama import (
    OllamaServer,
    OllamaUnavailable,
    chat_format,
    file_digest,
    model_name,
)
from tests.serving.ollama_double import OllamaDouble

JINJA = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by "
    "Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
FMT = chat_format(JINJA)


def small_gguf(path: Path, seed: int) -> Path:
    """A few-KB llama GGUF whose bytes depend on `seed` (a distinct model per seed)."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_type("model")
    writer.add_name(f"m{seed}")
    writer.add_string("tokenizer.chat_template", JINJA)
    rng = np.random.default_rng(seed)
    writer.add_tensor("token_embd.weight", rng.standard_normal((8, 16)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_chat_format_and_names() -> None:
    assert FMT.system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert FMT.stop == ["<|im_end|>", "<|im_start|>"]
    assert "{{ .System }}" in FMT.template and FMT.template.endswith("<|im_start|>assistant\n")
    with pytest.raises(ModelError, match="not ChatML"):
        chat_format("{{ bos_token }}[INST] {{ message }} [/INST]")
    assert model_name("{repo}", "My_Repo.git", "train") == "my_repo.git"
    assert model_name("guardian/{repo}-{skill}", "demo", "train-lora") == "guardian-demo-train-lora"
    with pytest.raises(ModelError, match="no usable model name"):
        model_name("{repo}", "!!!", "x")


def test_publish_tags_latest_and_prev_then_rollback_swaps_exact_digests(tmp_path: Path) -> None:
    one, two = small_gguf(tmp_path / "one.gguf", 1), small_gguf(tmp_path / "two.gguf", 2)
    with OllamaDouble() as double:
        target = OllamaServer(double.host)
        assert target.version()
        first = target.publish(one, "demo", "run1", FMT)
        assert double.model_blob("demo:latest") == file_digest(one) == first.blob
        assert double.digest_of("demo:latest") == first.digest == double.digest_of("demo:run1")
        assert double.digest_of("demo:prev") is None and first.replaced is None
        shown = target.client.show("demo:latest")
        assert shown.template == FMT.template and "<|im_end|>" in (shown.parameters or "")

        second = target.publish(two, "demo", "run2", FMT)
        assert double.model_blob("demo:latest") == file_digest(two)
        assert double.digest_of("demo:prev") == first.digest and second.replaced == first.digest
        assert second.digest != first.digest

        again = target.publish(two, "demo", "run2", FMT)  # a retry changes nothing
        assert again.digest == second.digest and double.digest_of("demo:prev") == first.digest

        with pytest.raises(ModelError, match="not rolling back"):
            target.rollback("demo", want_prev=second.digest)
        assert double.digest_of("demo:latest") == second.digest
        latest, prev = target.rollback("demo", want_prev=first.digest)
        assert (latest, prev) == (first.digest, second.digest)
        assert double.digest_of("demo:latest") == first.digest
        assert double.digest_of("demo:prev") == second.digest
        assert target.tags("demo") == {
            "latest": first.digest,
            "prev": second.digest,
            "run1": first.digest,
            "run2": second.digest,
        }


def _published_twice(
    tmp_path: Path, double: OllamaDouble, timeout: float
) -> tuple[OllamaServer, dict[str, str]]:
    target = OllamaServer(double.host, timeout=timeout)
    target.publish(small_gguf(tmp_path / "one.gguf", 1), "demo", "run1", FMT)
    target.publish(small_gguf(tmp_path / "two.gguf", 2), "demo", "run2", FMT)
    return target, target.tags("demo")


@pytest.mark.parametrize("fault", ["create", "copy", "upload-timeout"])
def test_a_failure_leaves_every_tag_as_it_was(tmp_path: Path, fault: str) -> None:
    three = small_gguf(tmp_path / "three.gguf", 3)
    with OllamaDouble() as double:
        target, before = _published_twice(tmp_path, double, 1.0)
        if fault == "create":
            double.fail_create = 1
        elif fault == "copy":
            double.fail_copy = 1
        else:
            double.upload_delay = 2.0
        with pytest.raises(OllamaUnavailable) as err:
            target.publish(three, "demo", "run3", FMT)
        double.upload_delay = 0.0
        assert target.tags("demo") == before, fault
        assert ("timed out" in str(err.value)) == (fault == "upload-timeout")
        published = target.publish(three, "demo", "run3", FMT)  # then it works
        assert double.model_blob("demo:latest") == file_digest(three)
        assert double.digest_of("demo:prev") == before["latest"] == published.replaced


def test_unreachable_and_refusals_are_one_clear_error(tmp_path: Path) -> None:
    one = small_gguf(tmp_path / "one.gguf", 1)
    with OllamaDouble() as double:
        target = OllamaServer(double.host)
        target.publish(one, "demo", "run1", FMT)
        with pytest.raises(ModelError, match="no :prev"):
            target.rollback("demo")
        double.stop()
        with pytest.raises(OllamaUnavailable, match="not reachable"):
            target.publish(one, "demo", "run2", FMT)
