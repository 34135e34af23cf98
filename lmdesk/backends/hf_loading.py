"""Loading helpers of the torch backend: tokenizer, PEFT LoRA, and one-line messages for the
failures users meet. No torch import at module level (peft and transformers load lazily)."""

from __future__ import annotations

import re
from pathlib import Path

from lmdesk.backends.hf_folder import ModelFolder
from lmdesk.core.errors import ModelLoadError


def context_length(config: dict, wanted: int) -> int:
    """The user's n_ctx, capped by what the model was trained for."""
    cfg = config.get("text_config", config)
    trained = cfg.get("max_position_embeddings") or cfg.get("n_positions") or cfg.get("max_sequence_length")
    return min(wanted, int(trained)) if trained else wanted


def load_tokenizer(folder: ModelFolder, needs_code: bool):
    """The folder's tokenizer; ModelLoadError if it is broken or has no chat template."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder.path), trust_remote_code=needs_code)
    except Exception as exc:  # noqa: BLE001 — transformers raises many kinds for a broken tokenizer
        raise ModelLoadError(
            f"the tokenizer of {folder.path.name} cannot be loaded: {first_line(exc)}", "re-download the model"
        ) from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"{folder.path.name} has no chat template (it is probably a base model, not a chat model)",
            "choose the instruct/chat version of this model",
        )
    return tokenizer


def apply_lora(model, lora_path: str, allow_pickle: bool):
    """Merge a PEFT LoRA adapter folder into the freshly loaded weights (loading without it undoes it)."""
    p = Path(lora_path).expanduser()
    if p.is_file() and p.suffix.lower() == ".gguf":
        raise ModelLoadError("a GGUF LoRA adapter works with the llama backend only", "choose a PEFT adapter folder")
    if not (p / "adapter_config.json").is_file():
        raise ModelLoadError(f"{p} is not a PEFT LoRA adapter (no adapter_config.json)")
    if not (p / "adapter_model.safetensors").is_file() and not allow_pickle:
        raise ModelLoadError(
            f"the LoRA adapter {p.name} has only pickle weights", "allow pickle weights for this model in its settings"
        )
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(p), is_trainable=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"the LoRA adapter {p.name} does not fit this model: {first_line(exc)}") from exc
    # Merged weights run at the base model's speed; the adapter cannot be switched off without a reload.
    return peft_model.merge_and_unload()


def load_failure(name: str, exc: Exception) -> ModelLoadError:
    """A one-line message for the failures users meet, instead of transformers' paragraphs."""
    text = str(exc)
    if "Weights only load failed" in text:
        return ModelLoadError(
            f"the pickle weights of {name} hold more than tensors (possibly code) and were refused",
            "use a safetensors version of this model",
        )
    if "mismatched_sizes" in text or "size mismatch" in text:
        return ModelLoadError(f"config.json of {name} does not match its weights (tensor sizes differ)",
                              "re-download the model")
    return ModelLoadError(f"transformers could not load {name}: {first_line(exc)}")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(exc: BaseException) -> str:
    lines = ANSI.sub("", str(exc)).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
