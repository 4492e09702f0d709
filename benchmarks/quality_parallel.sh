#!/usr/bin/env bash
# Run several quality.py grids at once on one machine (one process each, e.g. on a 16-core GPU machine), converting
# the raw datasets first. Every process appends to the same JSONL, one line per finished run.
#
#   benchmarks/quality_parallel.sh RAW_DIR DATA_DIR RESULTS.jsonl JOBS_FILE
#
# Job logs go to $LOG_DIR (default: the results' folder). JOBS_FILE: one quality.py `run` argument list per line (without --data_path/--results), e.g.
#   --datasets Amazon_Beauty --models SASRec-CE --budget gpu --time_limit 400
set -euo pipefail
raw=$1 data=$2 results=$3 jobs=$4
logs=${LOG_DIR:-$(dirname "$results")}  # one log per job: JOB_N.log
mkdir -p "$logs"
here="$(cd "$(dirname "$0")" && pwd)"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

convert() {  # format, raw folder, dataset name
    [ -f "$data/$3/$3.yaml" ] || "$python" -m dataset_scripts "$1" --input "$raw/$2" --name "$3" --output-dir "$data" >/dev/null
}
convert sequences amazon-beauty-2014 Amazon_Beauty &
convert sequences amazon-games-2018 Amazon_Games &
convert sequences amazon-office-2014 Amazon_Office &
convert movielens movielens-1m ml-1m &
wait

n=0
while read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    # shellcheck disable=SC2086
    (cd "$here" && "$python" quality.py run $line --data_path "$data" --results "$results" >"$logs/job_$n.log" 2>&1 \
        || echo "job $n failed: $line" >>"$logs/failed.txt") &
done <"$jobs"
wait
grep -h " seed " "$logs"/job_*.log || true
cat "$logs/failed.txt" 2>/dev/null || true
