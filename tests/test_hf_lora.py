"""LoRA adapters: a PEFT adapter on the torch backend and a GGUF adapter on the llama backend.

Each test makes a small random adapter, shows it changes the greedy reply, and shows that loading
the model without it gives the base reply back.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from lmdesk.backends import load_backend
from lmdesk.core.errors import ModelLoadError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from tests.hf_models import build_lora, build_tiny_llama

HELLO = [ChatMessage("user", "Hello, how are you today?")]
GREEDY = GenerationParams(max_tokens=16, temperature=0, repeat_penalty=1.0)


def reply(backend_name: str, path, options: LoadOptions | None = None) -> str:
    b = load_backend(backend_name, str(path), options)
    try:
        return "".join(x for x in b.generate(HELLO, GREEDY, threading.Event()) if isinstance(x, str))
    finally:
        b.close()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-lora"))


def test_peft_adapter_changes_the_reply_and_removing_it_restores(tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = build_lora(tiny_model, tmp_path / "adapter")
    base = reply("torch", tiny_model)
    with_lora = reply("torch", tiny_model, LoadOptions(lora_path=str(adapter)))
    assert with_lora != base
    assert reply("torch", tiny_model) == base  # loaded without the adapter: the base reply again

    # The merged weights we run must behave like peft's own (unmerged) adapter model.
    b = load_backend("torch", str(tiny_model), LoadOptions(lora_path=str(adapter)))
    try:
        ids = torch.tensor([b.prompt_ids(HELLO)])
        reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model)), str(adapter))
        with torch.inference_mode():
            assert torch.allclose(b.model(ids).logits, reference(ids).logits, atol=1e-4)
    finally:
        b.close()


def test_zero_adapter_is_the_identity(tiny_model, tmp_path):
    adapter = build_lora(tiny_model, tmp_path / "zero", scale=0.0)
    assert reply("torch", tiny_model, LoadOptions(lora_path=str(adapter))) == reply("torch", tiny_model)


def test_adapter_for_another_model_is_refused(tiny_model, tmp_path):
    import json

    adapter = build_lora(tiny_model, tmp_path / "adapter")
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["target_modules"] = ["no_such_module"]
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="does not fit this model"):
        load_backend("torch", str(tiny_model), LoadOptions(lora_path=str(adapter)))


# ------------------------------------------------------------------ GGUF LoRA, llama backend


def build_gguf_lora(base_gguf: str, out: Path, rank: int = 8, alpha: float = 16.0, std: float = 0.05,
                    targets: tuple[str, ...] = ("attn_q", "attn_v"), seed: int = 0) -> Path:
    """A random llama.cpp LoRA adapter for `base_gguf` (the format convert_lora_to_gguf.py writes).

    llama.cpp checks: general.type "adapter", adapter.type "lora", the base's architecture, and
    for `<base tensor>.lora_a` / `.lora_b` the ggml shapes a.ne = [in, rank], b.ne = [rank, out].
    gguf-py writes numpy shapes reversed, so the arrays are (rank, in) and (out, rank), as in PEFT.
    """
    import gguf

    reader = gguf.GGUFReader(base_gguf)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    n = 0
    for t in reader.tensors:
        if not any(t.name.endswith(f".{target}.weight") for target in targets):
            continue
        n_in, n_out = int(t.shape[0]), int(t.shape[1])  # ggml order: ne[0] = in_features
        writer.add_tensor(f"{t.name}.lora_a", rng.normal(0, std, (rank, n_in)).astype(np.float32))
        writer.add_tensor(f"{t.name}.lora_b", rng.normal(0, std, (n_out, rank)).astype(np.float32))
        n += 1
    assert n > 0, "no target tensors found in the base model"
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.mark.slow
def test_gguf_lora_on_the_llama_backend(embedded_model_path, tmp_path):
    adapter = build_gguf_lora(embedded_model_path, tmp_path / "adapter.gguf")
    base = reply("llama", embedded_model_path)
    with_lora = reply("llama", embedded_model_path, LoadOptions(lora_path=str(adapter)))
    assert with_lora != base
    assert reply("llama", embedded_model_path) == base


@pytest.mark.slow
def test_gguf_lora_with_wrong_shapes_is_refused(embedded_model_path, tmp_path):
    import gguf

    broken = tmp_path / "wrong-shape.gguf"
    writer = gguf.GGUFWriter(str(broken), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((4, 7), np.float32))  # in_features must be 576
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((576, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError):
        load_backend("llama", embedded_model_path, LoadOptions(lora_path=str(broken)))
