#!/usr/bin/env bash
# The GPU check in one command, for a session lent a device machine (an H200 with no network;
# its python3 3.12 has torch, transformers, accelerate, peft, safetensors, tokenizers, jinja2,
# numpy, pyyaml, requests, tqdm, but not platformdirs nor gguf, which lmdesk imports).
#
# Once, here, in the repo root (the wheels are pure Python, py3-none-any, ~210 KB; gguf's own
# needs numpy, pyyaml, requests and tqdm are already in the device image):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl platformdirs==4.14.8 gguf==0.19.0
#
# Then the device tool's run, with carry [".whl"] and timeout_s 420:
#   bash bench/gpu_check.sh
# It builds a random-weight ~380M-parameter Llama (no model file travels), measures lmdesk's engine
# against transformers' generate on it, and leaves gpu_check.json and gpu_check.log in $OUT
# (bench/results/ when $OUT is unset). The Python part is killed after 240 s.
#
#   bash bench/gpu_check.sh --install-only   # only the wheel install + import check (try it here:
#                                            # GPU_CHECK_SITE=/tmp/throwaway bash bench/gpu_check.sh --install-only)
set -uo pipefail
cd "$(dirname "$0")/.."

SITE="${GPU_CHECK_SITE:-/tmp/site}"
OUTDIR="${OUT:-$PWD/bench/results}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.log"
: >"$LOG"

ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/: download them here and pass carry [\".whl\"] (see the top of $0)" | tee -a "$LOG"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 -c "import platformdirs, gguf, lmdesk.backends.hf_convert, lmdesk.engine.worker; print('imports ok: platformdirs', platformdirs.__version__)" 2>&1 | tee -a "$LOG" || exit
[ "${1:-}" = "--install-only" ] && exit 0

{
    nvidia-smi || echo "nvidia-smi failed"
    python3 -c "import sys, torch, transformers; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| transformers', transformers.__version__, '| gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else None)"
} 2>&1 | tee -a "$LOG"

timeout -k 10 240 python3 bench/gpu_check.py --random-model large --device cuda --dtype bfloat16 \
    --max-tokens 256 --rounds 5 --out "$OUTDIR/gpu_check.json" 2>&1 | tee -a "$LOG"
rc=$?
[ $rc -eq 124 ] && echo "gpu_check.py timed out after 240 s" | tee -a "$LOG"
exit $rc
