"""Loading errors of the torch backend: each a ModelLoadError with a human message (tiny models)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
import torch

from lmdesk.backends import load_backend
from lmdesk.core.errors import GenerationError, ModelLoadError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from tests.hf_models import build_tiny_llama, copy_model, to_pickle, write_config

HELLO = [ChatMessage("user", "Hello, how are you today?")]
GREEDY = GenerationParams(max_tokens=8, temperature=0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-errors"))


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    return copy_model(tiny_model, tmp_path / "model")


def reply(path, options=None) -> str:
    b = load_backend("torch", str(path), options)
    try:
        return "".join(x for x in b.generate(HELLO, GREEDY, threading.Event()) if isinstance(x, str))
    finally:
        b.close()


def test_pickle_refused_by_default(model_copy):
    to_pickle(model_copy)
    with pytest.raises(ModelLoadError, match="pickle") as info:
        load_backend("torch", str(model_copy))
    assert "safetensors" in info.value.fix and "weights_only" in info.value.fix


def test_pickle_allowed_loads_with_weights_only(tiny_model, model_copy, monkeypatch):
    expected = reply(tiny_model)
    to_pickle(model_copy)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert reply(model_copy, LoadOptions(allow_pickle=True)) == expected
    assert calls and all(c is True for c in calls)


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['LMDESK_HOME']).mkdir(parents=True, "
                       "exist_ok=True); (pathlib.Path(__import__('os').environ['LMDESK_HOME']) / 'pwned').touch()",))


def test_malicious_pickle_never_runs_code(model_copy, lmdesk_home):
    to_pickle(model_copy)
    state = torch.load(str(model_copy / "pytorch_model.bin"), weights_only=True)
    state["evil"] = _Evil()
    torch.save(state, str(model_copy / "pytorch_model.bin"))
    with pytest.raises(ModelLoadError, match="more than tensors") as info:
        load_backend("torch", str(model_copy), LoadOptions(allow_pickle=True))
    assert not (lmdesk_home / "pwned").exists()
    assert "\x1b" not in info.value.user_text() and "\n" not in info.value.user_text()


def test_missing_tokenizer(model_copy):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_copy / name).unlink()
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        load_backend("torch", str(model_copy))


def test_bad_config_json(model_copy):
    (model_copy / "config.json").write_text('{"model_type": "llama", ')
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_backend("torch", str(model_copy))
    (model_copy / "config.json").write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(ModelLoadError, match="no model_type"):
        load_backend("torch", str(model_copy))


def test_config_that_does_not_match_the_weights(model_copy):
    write_config(model_copy, hidden_size=96)
    with pytest.raises(ModelLoadError, match="does not match its weights"):
        load_backend("torch", str(model_copy))


def test_trust_remote_code_needed(model_copy):
    write_config(model_copy, model_type="lmdesk-custom-arch", auto_map={"AutoModelForCausalLM": "modeling_x.XModel"})
    (model_copy / "modeling_x.py").write_text("raise SystemExit('custom code must not run')\n")
    with pytest.raises(ModelLoadError, match="custom Python code") as info:
        load_backend("torch", str(model_copy))
    assert "trust remote code" in info.value.fix


def test_unknown_architecture(model_copy):
    write_config(model_copy, model_type="no-such-architecture")
    with pytest.raises(ModelLoadError, match="not supported"):
        load_backend("torch", str(model_copy))


def test_no_chat_template(model_copy):
    cfg = json.loads((model_copy / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (model_copy / "tokenizer_config.json").write_text(json.dumps(cfg))
    for extra in model_copy.glob("chat_template.*"):
        extra.unlink()
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_backend("torch", str(model_copy))


def test_paths_that_are_not_models(tmp_path, model_copy):
    with pytest.raises(ModelLoadError, match="not found"):
        load_backend("torch", str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="bare weights file"):
        load_backend("torch", str(model_copy / "model.safetensors"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_backend("torch", str(tmp_path / "empty"))
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        load_backend("torch", str(model_copy))


def test_broken_safetensors_and_gguf_files_are_clear_errors(tmp_path, model_copy):
    # A git clone without LFS leaves pointer files where the weights should be.
    (model_copy / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 1234\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="model.safetensors .* not a valid safetensors file") as info:
        load_backend("torch", str(model_copy))
    assert "git lfs pull" in info.value.fix
    bad_gguf = tmp_path / "random.gguf"
    bad_gguf.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ModelLoadError, match="not a GGUF model"):
        load_backend("torch", str(bad_gguf))


def test_device_and_dtype_choices(tiny_model):
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA"):
            load_backend("torch", str(tiny_model), LoadOptions(device="cuda"))
    with pytest.raises(ModelLoadError, match="unknown device"):
        load_backend("torch", str(tiny_model), LoadOptions(device="tpu"))
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_backend("torch", str(tiny_model), LoadOptions(dtype="int3"))


def test_memory_estimate_refuses_before_loading(tiny_model, monkeypatch):
    import lmdesk.backends.hf_device as dev
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(dev, "available_bytes", lambda device: 1024 * 1024)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("must not load"))
    with pytest.raises(ModelLoadError, match="does not fit in memory") as info:
        load_backend("torch", str(tiny_model))
    assert "GiB" in info.value.message and info.value.fix


def test_estimate_counts_weights_and_kv_cache(tiny_model):
    from lmdesk.backends.hf_device import DeviceChoice, estimate_memory

    config = json.loads((tiny_model / "config.json").read_text())
    fp32 = estimate_memory(tiny_model, config, DeviceChoice("cpu", "float32"), 1024)
    bf16 = estimate_memory(tiny_model, config, DeviceChoice("cpu", "bfloat16"), 1024)
    assert fp32.weights == 2 * bf16.weights > 0
    assert fp32.kv_cache == 2 * 2 * 2 * 16 * 1024 * 4  # k+v × layers × kv heads × head dim × n_ctx × 4 bytes
    assert fp32.fits()


def test_out_of_memory_while_loading_is_a_clear_error(tiny_model, monkeypatch):
    from transformers import AutoModelForCausalLM

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", oom)
    with pytest.raises(ModelLoadError, match="not enough memory") as info:
        load_backend("torch", str(tiny_model))
    assert info.value.fix


def test_cancel_before_loading(tiny_model):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ModelLoadError, match="cancelled"):
        load_backend("torch", str(tiny_model), cancel=cancel)


def test_lora_errors(tiny_model, tmp_path):
    (tmp_path / "not-an-adapter").mkdir()
    with pytest.raises(ModelLoadError, match="not a PEFT LoRA adapter"):
        load_backend("torch", str(tiny_model), LoadOptions(lora_path=str(tmp_path / "not-an-adapter")))
    gguf_lora = tmp_path / "adapter.gguf"
    gguf_lora.write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="llama backend only"):
        load_backend("torch", str(tiny_model), LoadOptions(lora_path=str(gguf_lora)))


def test_importing_lmdesk_does_not_import_torch():
    code = (
        "import sys, lmdesk, lmdesk.backends, lmdesk.backends.hf_folder, lmdesk.backends.hf_device, "
        "lmdesk.backends.hf_convert, lmdesk.engine.worker\n"
        "bad = [m for m in ('torch', 'transformers', 'peft', 'accelerate') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_routes_a_pickle_folder_to_the_torch_backend_and_says_its_own_reason(model_copy, lmdesk_home):
    """`--backend torch` with a folder holding only a pickle checkpoint: the torch backend's refusal
    (pickle not allowed), then, allowed for that folder in the model options, its check of what the
    pickle holds — never "a folder with 0 .gguf files"."""
    from lmdesk.config import Settings, app_paths
    from tests.test_cli import assert_one_error_line, run

    to_pickle(model_copy)
    refused = run(lmdesk_home, "ask", "--backend", "torch", "--model", str(model_copy), "hi", timeout=300)
    assert refused.returncode == 3
    assert_one_error_line(refused, "pickle")
    assert ".gguf files" not in refused.stderr
    state = torch.load(str(model_copy / "pytorch_model.bin"), weights_only=True)
    state["evil"] = _Evil()
    torch.save(state, str(model_copy / "pytorch_model.bin"))
    paths = app_paths().ensure()
    settings = Settings.load(paths)
    settings.model_options[str(model_copy)] = {"allow_pickle": True}
    settings.save(paths)
    allowed = run(lmdesk_home, "ask", "--backend", "torch", "--model", str(model_copy), "hi", timeout=300)
    assert allowed.returncode == 3
    assert_one_error_line(allowed, "more than tensors")
    assert not (lmdesk_home / "pwned").exists()


@pytest.mark.parametrize("template, words", [
    ("{% if false %}x{% endif %}", "produced no prompt"),
    ("{{ ('x' * 1000000000)|length }}", "longer than 4,000,000 characters"),
])
def test_untrusted_templates_are_budgeted_in_the_torch_backend_too(model_copy, template, words):
    """The torch backend renders the model's template in lmdesk's sandbox, with its budget."""
    cfg = json.loads((model_copy / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    (model_copy / "tokenizer_config.json").write_text(json.dumps(cfg))
    for extra in model_copy.glob("chat_template.*"):
        extra.unlink()
    b = load_backend("torch", str(model_copy))
    try:
        with pytest.raises(GenerationError, match=words):
            list(b.generate(HELLO, GREEDY, threading.Event()))
    finally:
        b.close()
