"""Parameter dataclasses shared by every backend, the engine, the CLI and the panes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ContextPolicy(str, Enum):
    """What to do when a conversation no longer fits the context window."""

    DROP_OLDEST = "drop_oldest"  # drop the oldest turns, always keep the system prompt and last message
    ERROR = "error"  # refuse with ContextOverflowError


@dataclass
class GenerationParams:
    """Sampling parameters; the same meaning on every backend."""

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    context_policy: ContextPolicy = ContextPolicy.DROP_OLDEST


@dataclass
class LoadOptions:
    """How to load a model. None means: let the backend choose a sensible default."""

    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int = 0
    n_batch: int = 512
    lora_path: str | None = None  # a GGUF LoRA (llama) or a PEFT adapter folder (torch)
    device: str | None = None  # torch: "cuda", "mps", "cpu"; None = best available
    dtype: str | None = None  # torch: "bfloat16", "float16", "float32"; None = best for the device
    allow_pickle: bool = False  # torch: load .bin/.pt checkpoints (with weights_only=True)
    trust_remote_code: bool = False  # torch: never on unless the user says so for this model
    cache_dir: str | None = None  # where a backend keeps files made from the model (converted weights)
