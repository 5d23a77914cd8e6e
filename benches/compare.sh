#!/usr/bin/env bash
# The measurement protocol of docs/PERFORMANCE.md: lra's training step against PyTorch's, side
# by side, per model, on 1 and 2 threads.
#
#   bash benches/compare.sh                       # every model, 1 and 2 threads, 3 runs each
#   MODELS="transformer s5" THREADS=2 bash benches/compare.sh
#
# Settings (environment): MODELS (default: transformer s4 s4d dlr lru s5 mega), THREADS
# ("1 2"), RUNS (3 runs per side, alternating lra and PyTorch), STEPS (5 timed steps per run;
# the benches add their own warm-up steps), WAIT (minutes to wait for an idle machine, 10),
# IDLE (the load average counted as idle, 0.5), FOREIGN (cores other processes may use during a
# run, 0.2), RETRIES (new tries of a disturbed run, 2), PYTHON (/tmp/torchvenv/bin/python).
#
# 1. Waits up to WAIT minutes for the 1-minute load average to fall below IDLE. If it does not,
#    it still measures, but prints no ratio and no verdict: the figures are marked LOADED.
#    (PyTorch's OpenMP workers spin while they wait, so load flatters lra.)
# 2. Builds the benches (cargo bench --no-run) before timing anything.
# 3. Per model and thread count, runs lra then PyTorch, RUNS times, each run in a fresh
#    process; each run reports its median step (wall and CPU), its peak resident memory
#    (VmHWM) and its parameter count (both sides must match: the script says when not).
# 4. Prints per model and thread count the median over runs of each side's median step, the
#    ratio lra / PyTorch, the peak memory of each, and the verdict against the targets of
#    issue 17: step ratio ≤ 0.8 and peak memory ratio ≤ 0.5.
# 5. During each run it measures the CPU that other processes took: the machine's busy time
#    (/proc/stat) less the run's own CPU time (its process tree's, as reaped by this shell).
#    The load average cannot serve here: after the first run it counts the benchmark's own
#    threads. A run during which others took more than FOREIGN cores (0.2) is logged as
#    disturbed and measured again, up to RETRIES (2) times; only a run still disturbed then
#    voids the verdict.
#
# Output: a table on stdout, and every run's RESULT line in $OUT (default
# target/compare/<date>.txt) with the commit, the date and the load averages.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS=${MODELS:-"transformer s4 s4d dlr lru s5 mega"}
THREADS=${THREADS:-"1 2"}
RUNS=${RUNS:-3}
STEPS=${STEPS:-5}
WAIT=${WAIT:-10}
IDLE=${IDLE:-0.5}
FOREIGN=${FOREIGN:-0.2}
RETRIES=${RETRIES:-2}
PYTHON=${PYTHON:-/tmp/torchvenv/bin/python}
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
OUT=${OUT:-target/compare/$STAMP.txt}
mkdir -p "$(dirname "$OUT")"

load() { cut -d' ' -f1 /proc/loadavg; }
# Clock ticks the whole machine spent busy (user, nice, system, irq, softirq, steal).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# Clock ticks of this shell's reaped children (cutime + cstime: fields 16 and 17 of its stat,
# counted after the command name, which holds no space here).
child_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
TICKS=$(getconf CLK_TCK)
idle() { awk -v l="$(load)" -v i="$IDLE" 'BEGIN { exit !(l < i) }'; }

"$PYTHON" -c 'import torch' 2>/dev/null || {
    echo "no PyTorch at $PYTHON: python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch" >&2
    exit 1
}
echo "building the benches…" >&2
cargo bench --no-run --bench transformer_step --bench ssm_step >&2

LOADED=0
waited=0
until idle; do
    if ((waited >= WAIT * 60)); then
        LOADED=1
        echo "load average $(load) is not below $IDLE after $WAIT min: measuring anyway, but" \
            "no ratio and no verdict will be printed (LOADED)" >&2
        break
    fi
    ((waited == 0)) && echo "waiting for load average < $IDLE (now $(load))…" >&2
    sleep 15
    waited=$((waited + 15))
done

{
    echo "# benches/compare.sh $STAMP commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
    echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "# torch $("$PYTHON" -c 'import torch; print(torch.__version__)'), $(rustc --version)"
    echo "# load at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"

lra_cmd() { # model threads
    if [[ $1 == transformer ]]; then
        cargo bench -q --bench transformer_step -- --threads "$2" --steps "$STEPS"
    else
        cargo bench -q --bench ssm_step -- "$1" --threads "$2" --steps "$STEPS"
    fi
}
torch_cmd() { # model threads
    if [[ $1 == transformer ]]; then
        "$PYTHON" benches/reference/transformer_step.py --attention sdpa --threads "$2" --steps "$STEPS"
    else
        (cd benches/reference && "$PYTHON" "$1_step.py" --threads "$2" --steps "$STEPS")
    fi
}
# One run: its RESULT line with the cores other processes used during it appended.
run() { # impl model threads
    local line busy0 own0 start foreign try
    for ((try = 0; try <= RETRIES; try++)); do
        busy0=$(busy_ticks) own0=$(child_ticks) start=$(date +%s.%N)
        line=$("$1_cmd" "$2" "$3" 2>/dev/null | grep '^RESULT') || {
            echo "$1 $2 ($3 threads) failed" >&2
            return 1
        }
        foreign=$(awk -v b="$(($(busy_ticks) - busy0))" -v o="$(($(child_ticks) - own0))" \
            -v s="$start" -v e="$(date +%s.%N)" -v t="$TICKS" \
            'BEGIN { f = (b - o) / t / (e - s); printf "%.2f", f < 0 ? 0 : f }')
        if awk -v f="$foreign" -v m="$FOREIGN" 'BEGIN { exit !(f <= m) }'; then
            echo "$line foreign_cores=$foreign" | tee -a "$OUT" >&2
            return 0
        fi
        # Disturbed: kept in the log as such (not counted), and measured again.
        echo "# disturbed: $line foreign_cores=$foreign" | tee -a "$OUT" >&2
    done
    ((LOADED)) || echo "others used $foreign cores during $((RETRIES + 1)) tries of a run: this table is LOADED" >&2
    LOADED=1
    echo "$line foreign_cores=$foreign" | tee -a "$OUT" >&2
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for threads in $THREADS; do
    for model in $MODELS; do
        for ((r = 0; r < RUNS; r++)); do
            run lra "$model" "$threads" || true # a failed run is reported and left out
            run torch "$model" "$threads" || true
        done
    done
done

echo
printf '%-12s %3s | %9s %9s %7s | %9s %9s %7s | %6s %6s | %s\n' model thr "lra s" "lra CPU" "MiB" \
    "torch s" "torch CPU" "MiB" "ratio" "mem" verdict
for threads in $THREADS; do
    for model in $MODELS; do
        rows() { grep "^RESULT .*impl=$1 threads=$threads " "$OUT" | grep "model=$model " || true; }
        stat() { rows "$1" | field "$2" | median; }
        lp=$(rows lra | field params | sed -n 1p)
        tp=$(rows torch | field params | sed -n 1p)
        ls=$(stat lra wall_s) lc=$(stat lra cpu_s) lm=$(stat lra peak_mib)
        ts=$(stat torch wall_s) tc=$(stat torch cpu_s) tm=$(stat torch peak_mib)
        if [[ -z $ls || -z $ts ]]; then
            printf '%-12s %3s | no successful run on one side or both\n' "$model" "$threads"
            continue
        fi
        if ((LOADED)); then
            ratio="-" mem="-" verdict="LOADED: no ratio"
        else
            ratio=$(awk -v a="$ls" -v b="$ts" 'BEGIN { printf "%.2f", a / b }')
            mem=$(awk -v a="$lm" -v b="$tm" 'BEGIN { printf "%.2f", a / b }')
            verdict=$(awk -v r="$ratio" -v m="$mem" 'BEGIN {
                print (r <= 0.8 ? "step ok" : "step > 0.8") ", " (m <= 0.5 ? "memory ok" : "memory > 0.5") }')
        fi
        [[ $lp == "$tp" ]] || verdict="$verdict; PARAMETERS DIFFER ($lp vs $tp)"
        printf '%-12s %3s | %9.3f %9.2f %7.0f | %9.3f %9.2f %7.0f | %6s %6s | %s\n' "$model" "$threads" \
            "$ls" "$lc" "$lm" "$ts" "$tc" "$tm" "$ratio" "$mem" "$verdict"
    done
done | tee -a "$OUT"
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)$( ((LOADED)) && echo '; LOADED: figures not comparable, no ratio printed')" | tee -a "$OUT"
