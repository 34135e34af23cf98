"""What a Hugging Face model folder (or GGUF file) holds, read without importing torch.

`inspect_model` answers the questions the torch backend must settle before loading — which
weights, is there a tokenizer, does it need custom code — and the UI's model picker can call it
cheaply to list torch models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lmdesk.core.errors import ModelLoadError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


@dataclass
class ModelFolder:
    """A model on disk as the torch backend sees it."""

    path: Path  # the folder (or the .gguf file for kind == "gguf")
    kind: str  # "safetensors", "pickle" or "gguf"
    config: dict = field(default_factory=dict)
    weight_files: list[Path] = field(default_factory=list)
    has_tokenizer: bool = False
    remote_code: bool = False  # config.json's auto_map points at Python files in the folder

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))


def inspect_model(path: str | Path) -> ModelFolder:
    """Classify `path`; raises ModelLoadError with a human message when it is not a usable model."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelLoadError(f"model not found: {p}")
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return ModelFolder(p, "gguf")
        if p.suffix.lower() in PICKLE_SUFFIXES + (".safetensors",):
            raise ModelLoadError(
                f"{p.name} is a bare weights file", "choose the model's folder (with config.json and the tokenizer)"
            )
        raise ModelLoadError(f"{p.name} is not a model the torch backend can load", "choose a model folder or a .gguf file")

    config_file = p / "config.json"
    if not config_file.is_file():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelFolder(ggufs[0], "gguf")
        raise ModelLoadError(f"{p} has no config.json", "choose a Hugging Face model folder or a .gguf file")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"config.json in {p.name} is not valid JSON ({exc})", "re-download the model") from exc
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ModelLoadError(f"config.json in {p.name} has no model_type", "re-download the model")

    safetensors = sorted(p.glob("*.safetensors"))
    pickles = sorted(f for f in p.iterdir() if f.suffix.lower() in PICKLE_SUFFIXES and f.name != "training_args.bin")
    if safetensors:
        kind, weights = "safetensors", safetensors
    elif pickles:
        kind, weights = "pickle", pickles
    else:
        raise ModelLoadError(f"{p.name} has no weights (no .safetensors file)", "re-download the model")

    auto_map = config.get("auto_map")
    return ModelFolder(
        path=p,
        kind=kind,
        config=config,
        weight_files=weights,
        has_tokenizer=any((p / name).is_file() for name in TOKENIZER_FILES),
        remote_code=isinstance(auto_map, dict) and bool(auto_map),
    )


def check_loadable(folder: ModelFolder, allow_pickle: bool, trust_remote_code: bool) -> bool:
    """Refuse what the user has not allowed; returns whether transformers needs trust_remote_code."""
    if folder.kind == "gguf":
        return False
    if folder.kind == "pickle" and not allow_pickle:
        names = ", ".join(f.name for f in folder.weight_files[:3])
        raise ModelLoadError(
            f"{folder.path.name} has only pickle weights ({names}), which can run code when loaded",
            "prefer a safetensors version of this model, or allow pickle weights for this model in its settings "
            "(they are then loaded with weights_only=True)",
        )
    if not folder.has_tokenizer:
        raise ModelLoadError(
            f"{folder.path.name} has no tokenizer (tokenizer.json or tokenizer.model)",
            "copy the tokenizer files from the original model into this folder",
        )
    from transformers import CONFIG_MAPPING  # transformers only: no torch import yet

    known = folder.model_type in CONFIG_MAPPING
    needs_code = folder.remote_code and not known
    if needs_code and not trust_remote_code:
        raise ModelLoadError(
            f"{folder.path.name} needs custom Python code from its folder to run (model type "
            f"'{folder.model_type}')",
            "enable 'trust remote code' for this model only if you trust where it came from",
        )
    if not known and not folder.remote_code:
        raise ModelLoadError(
            f"model type '{folder.model_type}' is not supported by this version of transformers",
            "upgrade transformers, or use a GGUF version with the llama backend",
        )
    return needs_code
