#!/usr/bin/env bash
# The README's main job, timed: train the DigitsDVS config from a fresh work dir and data cache,
# then evaluate latest.pth with `bidl test`. Run from any scratch folder.
#   usage: bash benchmarks/main_job.sh [scratch-dir]
set -euo pipefail
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch" && cd "$scratch"
rm -rf data/digits_dvs work_dirs/clif3fc3dm_itout-b16x1-digitsdvs
config=clif3fc3dm_itout-b16x1-digitsdvs
start=$(date +%s.%N)
bidl data prepare digits_dvs --root data/digits_dvs
prepared=$(date +%s.%N)
bidl train "$config"
trained=$(date +%s.%N)
bidl test "$config" latest.pth
python - "$start" "$prepared" "$trained" <<'PY'
import json, sys
start, prepared, trained = map(float, sys.argv[1:])
records = [json.loads(l) for l in open("work_dirs/clif3fc3dm_itout-b16x1-digitsdvs/log.json")]
val = [r for r in records if r["mode"] == "val"]
print(f"data generation: {prepared - start:.1f} s")
print(f"training (bidl train, incl. start-up and per-epoch validation): {trained - prepared:.1f} s")
print("validation top-1 per epoch:", ", ".join(f"{r['accuracy_top-1']:.2f}" for r in val))
PY
