"""Tiny Hugging Face models built inside the tests (no hub downloads): a random Llama with a small
byte-level BPE tokenizer and a ChatML template, PEFT adapters, and broken variants of the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Hello, how are you today? I am fine, thank you very much.",
    "Write a short poem about the sea and the sky and the wind.",
    "Translate this sentence into French: the cat sleeps on the mat.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Émile aime le café — 東京 🙂",
] * 20


def build_tokenizer(folder: Path, eos: bool = True):
    """A byte-level BPE tokenizer (~400 tokens) with ChatML specials, saved in `folder`.

    eos=False declares no end-of-sequence token (<|im_end|> stays an ordinary special token), so
    nothing stops generation before max tokens: what a throughput benchmark wants."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>" if eos else None,
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML
    fast.save_pretrained(str(folder))
    return fast


def build_tiny_llama(
    folder: Path, seed: int = 0, *, hidden_size: int = 64, intermediate_size: int = 128, num_layers: int = 2,
    num_heads: int = 4, num_kv_heads: int = 2, max_positions: int = 1024, init_std: float = 0.2,
    eos: bool = True, dtype=None,
) -> Path:
    """A random Llama with the tokenizer above, saved as safetensors (default: 2 layers, hidden 64).

    The size parameters give larger shapes of the same model (bench/gpu_check.py --random-model);
    eos=False leaves out every end-of-sequence id; dtype (a torch dtype) is the saved weights' type."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder, eos=eos)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # a larger spread than the default init: distinct, stable greedy choices
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, init_std)
    model.generation_config.eos_token_id = tok.eos_token_id
    if dtype is not None:
        model.to(dtype)
    model.save_pretrained(str(folder))
    return folder


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def to_pickle(folder: Path) -> Path:
    """Replace model.safetensors by pytorch_model.bin (a pickle checkpoint)."""
    import torch
    from safetensors.torch import load_file

    st = folder / "model.safetensors"
    torch.save(load_file(str(st)), str(folder / "pytorch_model.bin"))
    st.unlink()
    return folder


def build_lora(base: Path, out: Path, seed: int = 1, scale: float = 1.0) -> Path:
    """A random PEFT LoRA adapter (q/v projections, rank 4) for `base`, saved in `out`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.mul_(scale)
    peft_model.save_pretrained(str(out))
    return out


def write_config(folder: Path, **changes) -> None:
    """Rewrite config.json with `changes` (None deletes a key)."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    path.write_text(json.dumps(cfg))
