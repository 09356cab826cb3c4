#!/usr/bin/env bash
# One GPU call of the session-4 fine-tune (models/MODEL_CARD.md, "Session 4"): render terminal-homing and base
# frames on the box's cores, fine-tune an earlier run's weights (same --arch), evaluate on the held-out clips.
#   DATA=path/to/shared/data INIT=path/to/run.pt OUT=outdir MINUTES=5 bash models/finetune_homing_gpu.sh
# ft2 was: DATA=.perception_data/data INIT=ft1.pt MINUTES=5 (lent H200: 125 s render, 366 s train, 6 s eval).
set -u
DATA=${DATA:-../shared/data}; INIT=${INIT:?INIT=path/to/run.pt}; OUT=${OUT:-/tmp/ft}; MINUTES=${MINUTES:-5}
PY=${PY:-python3}
mkdir -p "$OUT"; export PYTHONUNBUFFERED=1
T0=$(date +%s); SYN=""
( timeout 120 $PY -m sitl.render.dataset --out /tmp/syn_h --n 1600 --seed 300 --homing-fraction 1.0 \
    --distractor-fraction 0.35 --workers 8 > "$OUT/render_h.log" 2>&1 ) &
( timeout 120 $PY -m sitl.render.dataset --out /tmp/syn_b --n 1200 --seed 100 --workers 8 > "$OUT/render_b.log" 2>&1 ) &
wait
# a render cut short by its time limit still leaves usable frames
for d in /tmp/syn_h /tmp/syn_b; do n=$(ls $d/labels 2>/dev/null | wc -l); echo "$d: $n labels"; [ "$n" -gt 200 ] && SYN="$SYN $d"; done
[ -n "$SYN" ] || { echo "no synthetic frames rendered (see $OUT/render_*.log)"; exit 1; }
echo "render done at $(( $(date +%s) - T0 )) s"
timeout $(( ${MINUTES%.*} * 60 + 100 )) $PY -m models.train --data "$DATA" --device cuda --steps 30000 --minutes "$MINUTES" \
    --batch 384 --lr 2e-3 --every 2 --arch v2 --conf-neg-weight 3 --init "$INIT" --synthetic $SYN \
    --out "$OUT/ft.onnx" > "$OUT/train.log" 2>&1 || { tail -20 "$OUT/train.log"; exit 1; }
echo "train done at $(( $(date +%s) - T0 )) s"
$PY -m models.evaluate --model "$OUT/ft.onnx" --data "$DATA" --every 3 --workers 8 --out "$OUT/eval_heldout_iou05.json"
