#!/usr/bin/env bash
# One GPU call: train variants (from scratch in the shipped v1 layout unless a variant says otherwise, e.g.
# "--init models/detector.onnx" to fine-tune the shipped model) on the real training clips plus base, terminal-homing
# and (N_SIM > 0) sim-view renders, then measure each on the held-out real clips and, with the shipped model beside
# them, on the simulator's own renders (models.sim_eval) and on real sky crops of the validation clips
# (models.sky_check). Sessions 10, 15 and 16 (MODEL_CARD.md).
#   DATA=path/to/shared/data OUT=outdir MINUTES=5 VARIANTS="A|;B|--synthetic-weight 2" bash models/train_homing_gpu.sh
# A variant's arguments come after the defaults, so they override them ("--lr 1e-3", "--synthetic /tmp/syn_s").
# The renders land in /tmp/syn_h (homing), /tmp/syn_b (base) and /tmp/syn_s (sim views).
# Everything a run leaves comes back as $OUT/train.tgz (weights, logs) and $OUT/eval.tgz (reports).
set -u
DATA=${DATA:-../shared/data}; OUT=${OUT:-/tmp/th}; MINUTES=${MINUTES:-5}; PY=${PY:-python3}; W=${WORKERS:-16}
VARIANTS=${VARIANTS:-"A|;B|--synthetic-weight 2"}; RENDER_S=${RENDER_S:-100}
N_HOMING=${N_HOMING:-1600}; N_BASE=${N_BASE:-2560}; N_SIM=${N_SIM:-0}; SIM_N=${SIM_N:-16}; EVERY=${EVERY:-3}
R=/tmp/th_res; mkdir -p "$OUT" "$R"; export PYTHONUNBUFFERED=1
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
el "render $N_HOMING homing + $N_BASE base + $N_SIM sim-view frames (at most $RENDER_S s)"
WR=$(( N_SIM > 0 ? W / 4 : W / 2 ))
( timeout "$RENDER_S" $PY -m sitl.render.dataset --out /tmp/syn_h --n "$N_HOMING" --seed 300 --homing-fraction 1.0 \
    --distractor-fraction 0.35 --workers $WR > "$R/render_h.log" 2>&1 ) &
( timeout "$RENDER_S" $PY -m sitl.render.dataset --out /tmp/syn_b --n "$N_BASE" --seed 100 --workers $WR \
    > "$R/render_b.log" 2>&1 ) &
if [ "$N_SIM" -gt 0 ]; then
  ( timeout "$RENDER_S" $PY -m sitl.render.dataset --out /tmp/syn_s --n "$N_SIM" --seed 400 --sim-fraction 1.0 \
      --workers $(( W / 2 )) > "$R/render_s.log" 2>&1 ) &
fi
wait
SYN=""  # a render cut short by its time limit still leaves usable frames
for d in /tmp/syn_h /tmp/syn_b $( [ "$N_SIM" -gt 0 ] && echo /tmp/syn_s ); do n=$(ls $d/labels 2>/dev/null | wc -l); el "$d: $n labels"; [ "$n" -gt 100 ] && SYN="$SYN $d"; done
[ -n "$SYN" ] || { echo "no synthetic frames rendered"; tail "$R"/render_*.log; exit 1; }
IFS=';' read -ra VS <<< "$VARIANTS"; names=()
for v in "${VS[@]}"; do
  name=${v%%|*}; targs=${v#*|}; names+=("$name")
  timeout $(( ${MINUTES%.*} * 60 + 150 )) $PY -m models.train --data "$DATA" --device "${DEVICE:-cuda}" \
      --steps "${STEPS:-60000}" --minutes "$MINUTES" --batch "${BATCH:-384}" --lr 4e-3 --every "${TRAIN_EVERY:-2}" \
      --synthetic $SYN --out "$R/$name.onnx" $targs > "$R/train_$name.log" 2>&1 &
done
wait; el "trained"; grep -h -E "wrote|Error|error" "$R"/train_*.log
tar czf "$OUT/train.tgz" -C "$R" . ; el "train.tgz written"
models=()
for n in "${names[@]}"; do
  [ -f "$R/$n.onnx" ] || continue; models+=(--model "$R/$n.onnx")
  $PY -m models.evaluate --model "$R/$n.onnx" --data "$DATA" --every "$EVERY" --workers $(( W / 2 )) \
      --out "$R/heldout_${n}_iou05.json" > "$R/heldout_$n.txt" 2>&1 &
done
# models.sim_eval renders through the lockstep world, which imports pymavlink: the lent machines' image lacks it
# (session 10), so there it says so and the comparison runs afterwards on any CPU with the project installed
if $PY -c "import pymavlink" 2>/dev/null; then
  $PY -m models.sim_eval --model models/detector.onnx "${models[@]}" --n "$SIM_N" --out "$R/sim_eval.json" \
      > "$R/sim_eval.txt" 2>&1 &
else
  echo "no pymavlink here: run python -m models.sim_eval --model models/detector.onnx ${models[*]} elsewhere" \
      > "$R/sim_eval.txt"
fi
$PY -m models.sky_check --data "$DATA" --n 900 --model models/detector.onnx --model models/detector_v1.onnx \
    "${models[@]}" > "$R/sky_check.txt" 2>&1 &
wait; el "evaluated"
for n in "${names[@]}"; do echo "== $n"; grep -E "CLOSE\+MEDIUM|ALL" "$R/heldout_$n.txt"; done
tail -40 "$R/sim_eval.txt"; cat "$R/sky_check.txt"
tar czf "$OUT/eval.tgz" -C "$R" . ; el "end"
