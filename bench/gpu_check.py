"""GPU check of the torch backend: lmdesk's engine (Engine job + worker thread + torch backend) against
transformers' own `generate` on the same model, prompt and token count, interleaved in one run.

Prints and saves (bench/results/gpu_check.json):
  * tokens/s through lmdesk ÷ tokens/s of plain `model.generate`    (goal ≥ 0.97)
    (both end to end: request submitted → last token, same greedy tokens)
  * time to first token through lmdesk, and decode tok/s of each
  * peak VRAM (cuda)

Needs a machine set up with `pip install -e '.[torch]'` (it installs nothing). It takes ≤ 5 minutes:
GGUF conversion (first time only) + 2 loads + (1 warm-up + --rounds) × 2 generations.

  python bench/gpu_check.py                      # cuda, bfloat16, the embedded model
  python bench/gpu_check.py --model /path/to/hf-folder --max-tokens 512
  python bench/gpu_check.py --device cpu --max-tokens 48 --rounds 2   # the CPU smoke test
  python bench/gpu_check.py --random-model large  # no model file needed (bench/gpu_check.sh)

--random-model SIZE builds a random-weight Llama of that size (tests/hf_models.py's builder, with
its byte-level tokenizer and ChatML template) in a temporary folder and measures that instead:
"small" ≈ 20M parameters for CPU smoke tests, "large" ≈ 380M (hidden 1024, 24 layers, 16 heads,
8 KV heads). Its tokenizer and config declare no end-of-sequence token, so both sides decode
exactly --max-tokens tokens; the text is noise, the same greedy noise on both sides.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing lmdesk as well

from lmdesk.core.errors import LmdeskError  # noqa: E402
from lmdesk.core.messages import ChatMessage  # noqa: E402
from lmdesk.core.params import GenerationParams, LoadOptions  # noqa: E402
from lmdesk.engine.engine import Engine  # noqa: E402
from lmdesk.engine.jobs import Job  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
RESULTS = ROOT / "bench" / "results" / "gpu_check.json"

# Shapes for --random-model (tests/hf_models.py build_tiny_llama's size parameters).
RANDOM_MODELS = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2),
    "small": dict(hidden_size=512, intermediate_size=1536, num_layers=6, num_heads=8, num_kv_heads=4),
    "large": dict(hidden_size=1024, intermediate_size=4096, num_layers=24, num_heads=16, num_kv_heads=8),
}


def build_random_model(size: str, folder: Path, dtype: str) -> Path:
    """A random-weight Llama of `size` without end-of-sequence ids, saved in `dtype` into `folder`."""
    import torch

    from tests.hf_models import build_tiny_llama

    shape = RANDOM_MODELS[size]
    # The tests' spread (0.2 at hidden 64), scaled with 1/sqrt(hidden) so wider models stay as tame.
    std = 0.2 * (64 / shape["hidden_size"]) ** 0.5
    return build_tiny_llama(folder, **shape, max_positions=4096, init_std=std, eos=False,
                            dtype=getattr(torch, dtype))


def wait(job: Job, what: str, timeout: float = 240.0) -> object:
    """The job's result; exits with a message if it fails or takes longer than `timeout`."""
    try:
        return job.result(timeout)
    except TimeoutError:
        raise SystemExit(f"{what} timed out after {timeout:.0f} s") from None
    except Exception as exc:  # noqa: BLE001 — the job's typed error, said in one line
        message = exc.user_text() if isinstance(exc, LmdeskError) else str(exc)
        raise SystemExit(f"{what} failed: {message}") from None


def run_lmdesk(engine: Engine, messages, params: GenerationParams) -> dict:
    """One generation through the engine, from submit to the job's end; the first text's arrival
    is taken on the worker thread, as the engine hands it on."""
    first: list[float] = []

    def listener(kind: str, _value: object) -> None:
        if kind == "text" and not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    job = engine.generate(messages, params, listener=listener)
    reply = wait(job, "lmdesk generation")
    t1 = time.perf_counter()
    s = reply.stats
    return {"tokens": s.generated_tokens, "seconds": t1 - t0, "tok_s": s.generated_tokens / (t1 - t0),
            "ttft": (first[0] if first else t1) - t0, "decode_tok_s": s.tokens_per_second, "text": reply.text}


def run_hf(model, tokenizer, ids, n_tokens: int, sync) -> dict:
    import torch

    sync()
    t0 = time.perf_counter()
    with torch.inference_mode():
        # min = max: exactly the tokens lmdesk produced, even if this run would stop earlier.
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens,
                             min_new_tokens=n_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    sync()
    t1 = time.perf_counter()
    n = out.shape[1] - ids.shape[1]
    return {"tokens": n, "seconds": t1 - t0, "tok_s": n / (t1 - t0),
            "text": tokenizer.decode(out[0][ids.shape[1]:], skip_special_tokens=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--model", help="HF model folder or .gguf (default: the embedded model)")
    which.add_argument("--random-model", choices=sorted(RANDOM_MODELS), metavar="SIZE",
                       help=f"a random-weight Llama built in a temp folder: {', '.join(RANDOM_MODELS)}")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import torch

    from lmdesk.core.modelfiles.discovery import embedded_model_path

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to torch (use --device cpu for the smoke test)")
    dtype = args.dtype or ("bfloat16" if cuda else "float32")
    started = time.perf_counter()
    build_s = None
    with tempfile.TemporaryDirectory(prefix="lmdesk-gpu-check-") as tmp:
        if args.random_model:
            t = time.perf_counter()
            model_path = build_random_model(args.random_model, Path(tmp) / f"random-{args.random_model}", dtype)
            build_s = time.perf_counter() - t
            print(f"built a random {args.random_model} Llama in {build_s:.1f} s", flush=True)
        else:
            model_path = Path(args.model or embedded_model_path())
        result = measure(args, model_path, cuda, dtype, started)
    result["random_model_build_seconds"] = None if build_s is None else round(build_s, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    vram = "" if not cuda else f", peak VRAM {result['peak_vram_bytes'] / 2**30:.2f} GiB"
    print(f"\nlmdesk {result['lmdesk_tok_s']:.1f} tok/s ÷ transformers {result['transformers_tok_s']:.1f} tok/s "
          f"= {result['ratio']:.3f} (goal ≥ 0.97); TTFT {result['lmdesk_ttft_s'] * 1000:.0f} ms{vram}; "
          f"{result['tokens_per_run']} tokens a run; same text: {result['same_text']}; "
          f"{result['total_seconds']} s total → {args.out}")
    if args.random_model and result["tokens_per_run"] != args.max_tokens:
        print(f"warning: {result['tokens_per_run']} tokens a run, not --max-tokens {args.max_tokens}", flush=True)
    return 0


def measure(args, model_path: Path, cuda: bool, dtype: str, started: float) -> dict:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmdesk.backends.hf_convert import ensure_converted

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    # 1. Conversion (GGUF only; cached after the first run), timed apart from the loads.
    t = time.perf_counter()
    folder = ensure_converted(model_path, lambda f: None, threading.Event()) if model_path.suffix == ".gguf" else model_path
    convert_s = time.perf_counter() - t

    # 2. lmdesk: the engine's worker thread loads the model through the torch backend.
    engine = Engine()
    try:
        t = time.perf_counter()
        loaded = wait(engine.load("torch", str(model_path), LoadOptions(device=args.device, dtype=dtype)),
                      "loading through lmdesk")
        load_s = time.perf_counter() - t
        print(f"loaded {loaded.name} on {loaded.device} ({dtype}) through lmdesk in {load_s:.2f} s", flush=True)
        vram_after_load = torch.cuda.memory_allocated() if cuda else None

        # 3. The reference: the same weights loaded by transformers alone, on the same device.
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        ref = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype), device_map=args.device)
        ref.eval()
        messages = [ChatMessage("user", PROMPT)]
        ids = tokenizer.apply_chat_template([m.as_dict() for m in messages], add_generation_prompt=True,
                                            tokenize=True, return_dict=True, return_tensors="pt")["input_ids"]
        ids = ids.to(ref.device)
        params = GenerationParams(max_tokens=args.max_tokens, temperature=0.0, repeat_penalty=1.0)

        # 4. Warm-up (CUDA kernels, allocator), then interleaved rounds; alternate who goes first.
        warm = run_lmdesk(engine, messages, params)
        run_hf(ref, tokenizer, ids, warm["tokens"], sync)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        ours, theirs = [], []
        for r in range(args.rounds):
            pair = [lambda: ours.append(run_lmdesk(engine, messages, params)),
                    lambda: theirs.append(run_hf(ref, tokenizer, ids, warm["tokens"], sync))]
            for step in (pair if r % 2 == 0 else pair[::-1]):
                step()
            print(f"round {r + 1}: lmdesk {ours[-1]['tok_s']:.1f} tok/s ({ours[-1]['tokens']} tokens), "
                  f"transformers {theirs[-1]['tok_s']:.1f} tok/s", flush=True)
    finally:
        engine.shutdown(30)

    med = statistics.median
    result = {
        "model": f"random:{args.random_model}" if args.random_model else str(model_path),
        "model_params": sum(p.numel() for p in ref.parameters()),
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "dtype": dtype,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "prompt_tokens": int(ids.shape[1]),
        "tokens_per_run": warm["tokens"],
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "convert_or_cache_seconds": round(convert_s, 3),
        "lmdesk_load_seconds": round(load_s, 3),
        "lmdesk_tok_s": med(r["tok_s"] for r in ours),
        "transformers_tok_s": med(r["tok_s"] for r in theirs),
        "lmdesk_decode_tok_s": med(r["decode_tok_s"] for r in ours),
        "lmdesk_ttft_s": med(r["ttft"] for r in ours),
        "same_text": ours[-1]["text"] == theirs[-1]["text"],
        "peak_vram_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "vram_after_lmdesk_load_bytes": vram_after_load,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    result["ratio"] = result["lmdesk_tok_s"] / result["transformers_tok_s"]
    return result


if __name__ == "__main__":
    sys.exit(main())
