#!/usr/bin/env bash
# The CUDA paths, on a machine with a GPU (not part of CI): training on cuda in float32 and with
# mixed precision, torch.compile (default and reduce-overhead, i.e. CUDA graphs), DDP over nccl
# under torchrun, and the trainer benchmark on cuda (with compile and Lightning columns).
#   bash tests/bench/cuda_check.sh OUTDIR
set -u
out=${1:-/tmp/cuda_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in ("cnn_digits", "vae_digits", "gan_ring", "lstm_sine", "transformer_sine"):
    data = json.loads(Path(f"resources/examples/{name}.layerlab.json").read_text())
    data["training"]["amp"] = True
    (out / f"{name}_amp.layerlab.json").write_text(json.dumps(data))
PY
for ex in cnn_digits vae_digits gan_ring; do
  echo "== $ex cuda float32"; python3 main.py train resources/examples/$ex.layerlab.json --device cuda --epochs 3 --out "$out/run_$ex" | tail -2
done
for ex in cnn_digits vae_digits gan_ring lstm_sine transformer_sine; do
  echo "== $ex cuda amp"; python3 main.py train "$out/${ex}_amp.layerlab.json" --device cuda --epochs 3 --out "$out/amp_$ex" | tail -2
done
echo "== torchrun nccl, 1 process (one GPU)"
python3 -m torch.distributed.run --standalone --nproc_per_node 1 main.py train resources/examples/cnn_digits.layerlab.json --distributed --device cuda --epochs 2 --out "$out/ddp" 2>&1 | tail -3
echo "== export on cuda-trained weights"
python3 main.py export resources/examples/cnn_digits.layerlab.json --weights "$out/run_cnn_digits/weights.pt" --format onnx --out "$out/cnn.onnx"
for mode in default reduce-overhead; do
  echo "== cnn_digits cuda, compile $mode (reduce-overhead: CUDA graphs)"
  python3 main.py train resources/examples/cnn_digits.layerlab.json --device cuda --epochs 3 --compile $mode --out "$out/compile_$mode" 2>&1 | tail -3
done
echo "== bench_trainer on cuda (loop, probes, compile, Lightning if installed)"
timeout 400 python3 tests/bench/bench_trainer.py --device cuda --reps 7
