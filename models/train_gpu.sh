#!/usr/bin/env bash
# One GPU session of the recipe (models/MODEL_CARD.md): render synthetic frames, train one or more variants
# in parallel on one GPU, compare them on the VALIDATION clips (a carve-out of train, never held-out), then
# evaluate only the chosen one on the held-out clips, run the label analysis and time it.
#   DATA=path/to/shared/data RES=outdir MINUTES=5.5 SYN_N=1600 VARIANTS="name|train args;name|train args" \
#       bash models/train_gpu.sh
# The session-2 candidate (models/results/session2_candidate):
#   DATA=.perception_data/data RES=/tmp/res MINUTES=5.9 SYN_N=1600 SKIP_OLD=1 \
#       VARIANTS="X|--arch v2 --conf-neg-weight 3 --lr 4e-3" bash models/train_gpu.sh
# One variant: nothing is chosen and no validation runs; with several, pass --holdout-val in each.
set -u
DATA=${DATA:-../shared/data}; RES=${RES:-/tmp/res}; MINUTES=${MINUTES:-5.5}; SYN_N=${SYN_N:-1600}
PY=${PY:-python3}; W=${WORKERS:-16}
mkdir -p "$RES"; export PYTHONUNBUFFERED=1
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
el "render $SYN_N synthetic frames"
$PY -m sitl.render.dataset --out /tmp/syn --n "$SYN_N" --seed 100 --workers "$W" > "$RES/render.log" 2>&1
el "train variants: $VARIANTS"
IFS=';' read -ra VS <<< "$VARIANTS"; names=()
for v in "${VS[@]}"; do
  name=${v%%|*}; targs=${v#*|}; names+=("$name")
  $PY -m models.train --data "$DATA" --device cuda --steps 200000 --minutes "$MINUTES" --batch 384 --every 2 \
      --synthetic /tmp/syn --out "$RES/$name.onnx" $targs > "$RES/train_$name.log" 2>&1 &
done
wait; el "trained"; grep -h -E "autotune|using|wrote|arch" "$RES"/train_*.log
best=""; bestap=-1
if [ "${#names[@]}" = 1 ]; then best=${names[0]}; names=(); fi  # one run: nothing to choose, no validation
for n in "${names[@]}"; do
  [ -f "$RES/$n.onnx" ] || continue
  $PY -m models.evaluate --model "$RES/$n.onnx" --data "$DATA" --split val --every 2 --workers "$W" \
      --out "$RES/val_$n.json" > "$RES/val_$n.txt" 2>&1
  ap=$($PY -c "import json;print(json.load(open('$RES/val_$n.json'))['groups']['ALL/ALL']['AP50'])")
  el "val $n ALL/ALL AP50 $ap"; grep -E "ALL|CLOSE\+MEDIUM" "$RES/val_$n.txt"
  if $PY -c "import sys; sys.exit(0 if $ap > $bestap else 1)"; then best=$n; bestap=$ap; fi
done
el "chosen on validation: $best ($bestap)"; echo "$best" > "$RES/chosen.txt"
for iou in 0.5 0.3; do
  $PY -m models.evaluate --model "$RES/$best.onnx" --data "$DATA" --every 3 --iou $iou --workers "$W" \
      --out "$RES/heldout_${best}_iou${iou}.json" 2>&1 | tee "$RES/heldout_${best}_iou${iou}.txt"
done
el "held-out done"
$PY -m models.label_analysis --model "$RES/$best.onnx" --data "$DATA" --every 3 --workers "$W" \
    --out "$RES/labels_$best.json" > "$RES/labels_$best.txt" 2>&1
[ -n "${SKIP_OLD:-}" ] || $PY -m models.label_analysis --model models/detector.onnx --data "$DATA" --every 3 \
    --workers "$W" --out "$RES/labels_shipped.json" > "$RES/labels_shipped.txt" 2>&1
el "label analysis done"
$PY -m models.arch_latency --old "$RES/$best.onnx" --old models/detector.onnx --rounds 10 2>&1 | grep -v -i warn \
    | tee "$RES/latency.txt"
cp models/detector.onnx /tmp/old_detector.onnx && cp "$RES/$best.onnx" models/detector.onnx \
  && $PY -c "from pathlib import Path; import bench.bench_detector as b; b.run(Path('/tmp/bench'))" 2>&1 \
  | tee "$RES/bench_detector_new.txt"; cp /tmp/old_detector.onnx models/detector.onnx
el "end"
