#!/usr/bin/env bash
# GPU smoke test (issue 15): one ResNet-50 224² ADV² unit per interpreter with random weights on CUDA;
# prints per-step times and peak GPU memory. Exits 0 with a SKIP line where CUDA is not available.
#   bash bench/gpu_smoke.sh [--batch 8] [--k 4] [--interpreters grad,cam,rts,mask]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python}" "$here/gpu_smoke.py" "$@"
