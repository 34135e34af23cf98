"""The torch backend on a real GPU (cuda or mps). The only tests allowed to skip: on a machine
without a GPU they skip cleanly; bench/gpu_check.py measures speed on one."""

from __future__ import annotations

import threading

import pytest
import torch

from lmdesk.backends import load_backend
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from tests.hf_models import build_tiny_llama

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not (HAS_CUDA or HAS_MPS), reason="no CUDA or MPS device"),
]
HELLO = [ChatMessage("user", "Hello, how are you today?")]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-gpu")))


def test_default_device_and_dtype(tiny_model):
    b = load_backend("torch", tiny_model)
    try:
        if HAS_CUDA:
            assert b.device == "cuda"
            assert b.dtype == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
        else:
            assert (b.device, b.dtype) == ("mps", "float16")
        assert next(b.model.parameters()).device.type == b.device
        items = list(b.generate(HELLO, GenerationParams(max_tokens=8, temperature=0), threading.Event()))
        assert items[-1].generated_tokens == 8 and items[-1].stop_reason == "length"
    finally:
        b.close()


def test_gpu_greedy_matches_cpu_in_float32(tiny_model):
    """Same weights, same precision: the reply must not depend on the device."""
    replies = []
    for device in ("cuda" if HAS_CUDA else "mps", "cpu"):
        b = load_backend("torch", tiny_model, LoadOptions(device=device, dtype="float32"))
        try:
            items = list(b.generate(HELLO, GenerationParams(max_tokens=8, temperature=0), threading.Event()))
            replies.append("".join(items[:-1]))
        finally:
            b.close()
    assert replies[0] == replies[1]


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_close_frees_vram(tiny_model):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    b = load_backend("torch", tiny_model)
    assert torch.cuda.memory_allocated() > before
    list(b.generate(HELLO, GenerationParams(max_tokens=4, temperature=0), threading.Event()))
    b.close()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before + 1024 * 1024
