#!/usr/bin/env bash
# GPU check of the torch backend, on a machine with an NVIDIA GPU and CUDA.
#
# Set up once (in the repo root):
#   make run                          # or: python3 -m venv .venv && .venv/bin/pip install -e .
#   .venv/bin/pip install -e '.[torch]'
# Then:
#   bash bench/gpu_check.sh
#
# It prints the GPU (nvidia-smi) and the torch/CUDA/transformers versions, builds a random-weight
# Llama of ~380M parameters in bfloat16 (so no model file is needed), and generates 256 tokens on it
# five times through lmdesk's engine and five times through transformers' own `generate`,
# alternately, printing each round's tokens/s. The last line has the result:
#   lmdesk A tok/s ÷ transformers B tok/s = R (goal ≥ 0.97); TTFT T ms, peak VRAM V GiB;
#   256 tokens a run; same text: True; S s total → bench/results/gpu_check.json
# R near 1 means lmdesk's engine (worker thread, streaming, cancellation checks) costs nothing
# measurable on top of the model; "same text" says both decoded the same greedy tokens. Everything
# printed is also kept in bench/results/gpu_check.log. The check is stopped if it runs past
# 4 minutes. To measure a model of your own instead:
#   .venv/bin/python bench/gpu_check.py --model /path/to/hf-folder-or.gguf
#
# Which Python: $PYTHON if set, else .venv/bin/python if there is one, else python3 (any Python with
# torch, transformers, accelerate, peft and safetensors; lmdesk itself runs from this checkout).
# On a machine without internet access whose Python lacks lmdesk's small pure-Python dependencies
# (platformdirs, gguf), put their wheels in .whl/ in the repo root; they are installed into
# $GPU_CHECK_SITE (default /tmp/lmdesk-gpu-check-site) and nowhere else. To fetch them elsewhere:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl platformdirs==4.14.8 gguf==0.19.0
# `bash bench/gpu_check.sh --install-only` stops after that install and the import check.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3
fi
OUTDIR="${GPU_CHECK_OUT:-$PWD/bench/results}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.log"
: >"$LOG"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if ls .whl/*.whl >/dev/null 2>&1; then
    SITE="${GPU_CHECK_SITE:-/tmp/lmdesk-gpu-check-site}"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit
    export PYTHONPATH="$SITE:$PYTHONPATH"
fi
"$PY" -c "import platformdirs, gguf, lmdesk.backends.hf_convert, lmdesk.engine.worker; print('lmdesk imports ok')" 2>&1 \
    | tee -a "$LOG" || { echo "lmdesk cannot be imported with $PY: see the set-up at the top of $0" | tee -a "$LOG"; exit 2; }
[ "${1:-}" = "--install-only" ] && exit 0

{
    nvidia-smi || echo "nvidia-smi failed: is the NVIDIA driver installed?"
    "$PY" -c "import sys, torch, transformers; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| transformers', transformers.__version__, '| gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else None)"
} 2>&1 | tee -a "$LOG"

timeout -k 10 240 "$PY" bench/gpu_check.py --random-model large --device cuda --dtype bfloat16 \
    --max-tokens 256 --rounds 5 --out "$OUTDIR/gpu_check.json" 2>&1 | tee -a "$LOG"
rc=$?
[ $rc -eq 124 ] && echo "gpu_check.py was stopped after 240 s" | tee -a "$LOG"
exit $rc
