"""CPU decode speed of the torch backend vs the llama backend on the embedded model, interleaved.

Also times the torch backend's first load of the GGUF (conversion) against a cached load.
Run: .venv/bin/python bench/torch_vs_llama_cpu.py [--rounds 3 --max-tokens 64] (writes bench/results/torch_vs_llama_cpu.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmdesk.backends import load_backend  # noqa: E402
from lmdesk.backends.hf_convert import CACHE_ENV  # noqa: E402
from lmdesk.core.messages import ChatMessage  # noqa: E402
from lmdesk.core.modelfiles.discovery import embedded_model_path  # noqa: E402
from lmdesk.core.params import GenerationParams  # noqa: E402

PROMPT = [ChatMessage("user", "Write a long story about a lighthouse keeper who finds a message in a bottle.")]


def one(backend, params) -> dict:
    t0 = time.perf_counter()
    items = list(backend.generate(PROMPT, params, threading.Event()))
    wall = time.perf_counter() - t0
    s = items[-1]
    return {"decode_tok_s": s.tokens_per_second, "ttft": s.time_to_first_token, "tokens": s.generated_tokens,
            "wall": wall}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    gguf = str(embedded_model_path())
    with tempfile.TemporaryDirectory() as cache:
        os.environ[CACHE_ENV] = cache
        t = time.perf_counter()
        load_backend("torch", gguf).close()
        first = time.perf_counter() - t
        t = time.perf_counter()
        torch_b = load_backend("torch", gguf)
        cached = time.perf_counter() - t
        llama_b = load_backend("llama", gguf)
        params = GenerationParams(max_tokens=args.max_tokens, temperature=0, repeat_penalty=1.0)
        one(torch_b, params), one(llama_b, params)  # warm-up
        runs: dict[str, list[dict]] = {"torch": [], "llama": []}
        for r in range(args.rounds):
            order = [("torch", torch_b), ("llama", llama_b)]
            for name, b in order if r % 2 == 0 else order[::-1]:
                runs[name].append(one(b, params))
        torch_b.close()
        llama_b.close()
    med = statistics.median
    result = {
        "first_load_seconds": first, "cached_load_seconds": cached, "cache_ratio": cached / first,
        **{f"{n}_decode_tok_s": med(x["decode_tok_s"] for x in v) for n, v in runs.items()},
        **{f"{n}_ttft_s": med(x["ttft"] for x in v) for n, v in runs.items()},
        "runs": runs,
    }
    out = ROOT / "bench" / "results" / "torch_vs_llama_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"conversion: first load {first:.2f} s, cached {cached:.2f} s, ratio {cached / first:.3f} (goal ≤ 0.2)")
    print(f"decode: torch {result['torch_decode_tok_s']:.1f} tok/s, llama {result['llama_decode_tok_s']:.1f} tok/s; "
          f"TTFT torch {result['torch_ttft_s'] * 1000:.0f} ms, llama {result['llama_ttft_s'] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
