#!/usr/bin/env bash
# Publish the full suites of both tracks, from nothing or from wherever an earlier run stopped, with one command:
#
#   bash leaderboard/republish.sh [RESULTS] [run options...]      # e.g. RESULTS=results/full, --device cuda
#
# Every step is resumable: the grid skips finished cells and a tuning cell in flight resumes from its trial journal,
# so the same command, run again after a stop (the end of a working session, a killed worker), goes on where it
# was. To extend a checkpoint instead of starting over, restore it first (leaderboard/progress/README.md).
# WORKERS (default 2) and TIMEOUT (seconds per fit, default 3600) set the grid's workers and per-cell limit; any
# further options go to every `editbench run` and `editbench experiment compute` (for example --device cuda or
# --executor ray). BEFORE names the commit whose leaderboard/full the changes are measured against (the 0.2
# tables, 7cd9f3e). STEPS picks steps by number (default all: "1 2 3 4 5 6").
set -euo pipefail
cd "$(dirname "$0")/.."

R=${1:-results/full}
[ $# -gt 0 ] && shift
GRID=(--workers "${WORKERS:-2}" --timeout "${TIMEOUT:-3600}" "$@")
BEFORE=${BEFORE:-7cd9f3e}
STEPS=" ${STEPS:-1 2 3 4 5 6} "
step() { [[ "$STEPS" == *" $1 "* ]] && echo "== step $1: $2 ($(date -u +%H:%M:%S))"; }
run() { editbench run --suite full --out "$R" "${GRID[@]}" "$@"; }

# 1. The suite, one tuned budget at a time: n = 16's searches first (the most informative, and n = 256's start
#    from their best), then n = 1, then n = 256, then the rest (n = 4 and 64 take the nearest tuned budget).
if step 1 "the full suite"; then
  run --budgets 16
  run --budgets 1
  run --budgets 256
  run
fi

# 2. Regret at n = 256 for each family's best method per task: the matched 8-trial search against 3x as many
#    trials (tuning cells only; the scored cells keep the matched search's best and tuning.md reads the probe).
if step 2 "regret probes at n = 256"; then
  editbench leaderboard build --results "$R" --out "$R-lb256" --budget 256 >/dev/null
  python - "$R-lb256/families.csv" > "$R-lb256/family-bests.txt" <<'EOF'
import sys
import pandas as pd
f = pd.read_csv(sys.argv[1], comment="#")
for _, r in f[f.budget == 256].iterrows():
    best = sorted({str(r[c]) for c in ("best_edit", "best_finetune", "best_prompt") if isinstance(r[c], str)})
    if best:
        print(r.task, ",".join(best))
EOF
  while read -r task methods; do
    run --budgets 256 --tasks "$task" --methods "$methods" --regret 256:3 --tuning-only </dev/null
  done < "$R-lb256/family-bests.txt"
fi

# 3. Would more compute help? Every finetuning cell at n = 256 refitted with four times its tuned epochs and cap.
if step 3 "four times the tuned compute at n = 256"; then
  editbench experiment compute --results "$R" --out "$R-compute" --budget 256 --factor 4 "${GRID[@]}"
fi

# 4. The nearest-budget trade, measured on one task: every budget tuned directly (the cells both runs share are
#    restored from the suite's, so only the searches at n = 4 and 64 and the cells they configure are new).
if step 4 "every budget tuned directly on unlit_lamps"; then
  mkdir -p "$R-tune-every" && cp -rn "$R/unlit_lamps" "$R-tune-every/"
  editbench run --suite full --tasks unlit_lamps --tune-budgets 1,4,16,64,256 --out "$R-tune-every" "${GRID[@]}"
  editbench leaderboard build --results "$R/unlit_lamps" --out "$R-unlit-lb" >/dev/null
  editbench leaderboard build --results "$R-tune-every" --out "$R-tune-every-lb" >/dev/null
fi

# 5. The export and the tables.
if step 5 "export and leaderboard"; then
  editbench leaderboard export --results "$R" --out leaderboard/results/full.jsonl.gz --suite full
  editbench leaderboard build --results leaderboard/results/full.jsonl.gz --out leaderboard/full
fi

# 6. What the fair protocol changed: each conclusion of the 0.2 families table against the new one's, and the
#    nearest-budget trade's effect on unlit_lamps' conclusions.
if step 6 "what the fair protocol changed"; then
  git show "$BEFORE:leaderboard/full/families.csv" > "$R-families-before.csv"
  editbench leaderboard changes --before "$R-families-before.csv" --after leaderboard/full \
    --out leaderboard/full/changes.md
  if [ -d "$R-tune-every-lb" ]; then
    editbench leaderboard changes --before "$R-unlit-lb" --after "$R-tune-every-lb" --out "$R-tune-every-changes.md"
  fi
fi
