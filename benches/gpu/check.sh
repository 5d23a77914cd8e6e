#!/usr/bin/env bash
# Verifies lra on an NVIDIA GPU: CPU-vs-GPU parity of a tiny Transformer and a tiny S4D (20
# steps from the same weights and batches, losses within 1e-3 relative), a timed training step
# of the benchmark models on the GPU, the quickstart with `--device cuda`, and one summary.
#
# Two halves, because the lent GPU machine reaches no network and has no Rust toolchain (its
# image has CUDA 13.0's nvcc, driver 580, PyTorch; docs/PERFORMANCE.md, "GPU"):
#
#   benches/gpu/check.sh build   on the development machine (cargo, PyPI): installs the CUDA
#                                13.0 toolkit from PyPI (.ci/cuda-toolkit), builds lra and the
#                                benches with `--features cuda` for the H100/H200 (sm_90) and
#                                puts the stripped binaries in gpu-build/ (git-ignored)
#   benches/gpu/check.sh run     on the GPU machine, from the repository root, with gpu-build/
#                                carried: runs the checks and prints the summary
#
# With the device tool, after `build` in the session's own checkout:
#   run(command="bash benches/gpu/check.sh run", carry=["gpu-build"], timeout_s=600)
#
# Building on the GPU machine itself would need a Rust toolchain and every crate's source
# there (`cargo vendor` is over 100 MiB, the tool carries 64 MiB), so the binaries travel
# instead; they link the same CUDA 13.0 libraries (libcublas.so.13, libnvrtc.so.13) that the
# machine's image provides.
#
# Environment: CUDA_COMPUTE_CAP (build; default 90), LRA_CUDA_ROOT (build; where the toolkit
# goes, default ~/.cache/lra/cuda-13.0), QUICKSTART_SECONDS (run; default 330), OUT (run; the
# logs are copied there when set, as the device tool's $OUT).
set -uo pipefail
cd "$(dirname "$0")/../.."

carry=gpu-build
benches=(device_parity transformer_step ssm_step)

build() {
    set -e
    local root="${LRA_CUDA_ROOT:-$HOME/.cache/lra/cuda-13.0}"
    eval "$(.ci/cuda-toolkit "$root")"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-cuda}"
    local started=$SECONDS
    cargo build --release --features cuda --bin lra
    local listing
    listing="$(mktemp)"
    local args=()
    for b in "${benches[@]}"; do args+=(--bench "$b"); done
    cargo bench --no-run --features cuda "${args[@]}" --message-format=json-render-diagnostics >"$listing"
    rm -rf "$carry"
    mkdir -p "$carry"
    cp "$CARGO_TARGET_DIR/release/lra" "$carry/lra"
    for b in "${benches[@]}"; do
        local exe
        exe=$(grep -o "\"executable\":\"[^\"]*/$b-[0-9a-f]*\"" "$listing" | tail -1 | cut -d'"' -f4)
        if [ -z "$exe" ]; then
            echo "check.sh: cargo did not report the $b bench's executable" >&2
            exit 1
        fi
        cp "$exe" "$carry/$b"
    done
    rm -f "$listing"
    strip "$carry"/*
    {
        echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
        echo "cuda $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') for sm_$CUDA_COMPUTE_CAP"
        echo "built $(date -u +%Y-%m-%dT%H:%MZ) in $((SECONDS - started)) s"
    } >"$carry/BUILD"
    du -sh "$carry"
    echo "check.sh: ready; on the GPU machine: bash benches/gpu/check.sh run (carry $carry)"
}

# The directories holding the CUDA 13 libraries the binaries link, on the GPU machine.
library_path() {
    local dirs=() d
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64; do
        [ -d "$d" ] && dirs+=("$d")
    done
    # PyTorch's CUDA 13 wheels (nvidia-cublas, nvidia-cuda-nvrtc) put them in nvidia/cu13/lib.
    local site
    for site in $(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
        for d in "$site"/nvidia/cu13/lib "$site"/nvidia/*/lib; do
            [ -d "$d" ] && dirs+=("$d")
        done
    done
    (IFS=:; echo "${dirs[*]}")
}

declare -a summary=()
note() { summary+=("$1"); }

run() {
    if [ ! -x "$carry/lra" ]; then
        echo "check.sh: $carry/lra is missing: run 'benches/gpu/check.sh build' on the development machine and carry $carry" >&2
        exit 2
    fi
    local logs
    logs="$(mktemp -d)"
    export LD_LIBRARY_PATH="$(library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export NO_COLOR=1
    local gpu
    gpu=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
    gpu=${gpu:-no GPU found by nvidia-smi}
    echo "== GPU: $gpu"
    cat "$carry/BUILD"
    local missing
    missing=$(ldd "$carry/lra" | grep 'not found' || true)
    if [ -n "$missing" ]; then
        echo "check.sh: libraries not found (searched $LD_LIBRARY_PATH):" >&2
        echo "$missing" >&2
        exit 1
    fi

    echo "== parity: CPU vs CUDA, 20 steps"
    if "$carry/device_parity" --device cuda --steps 20 --tolerance 1e-3 2>&1 | tee "$logs/parity.log"; then
        note "parity       PASS  $(grep -c ': agree$' "$logs/parity.log")/2 models within 1e-3"
    else
        note "parity       FAIL  $(grep '^parity\|^error' "$logs/parity.log" | tr '\n' ' ')"
    fi
    while read -r line; do note "             $line"; done < <(grep '^parity' "$logs/parity.log")

    echo "== transformer step on the GPU"
    if "$carry/transformer_step" --device cuda --steps 10 2>&1 | tee "$logs/transformer.log"; then
        note "transformer  $(grep '^median step' "$logs/transformer.log" | cut -d';' -f1)"
    else
        note "transformer  FAIL  $(grep -m1 '×\|error' "$logs/transformer.log")"
    fi
    if "$carry/transformer_step" --device cuda --steps 10 --attention causal 2>&1 | tee "$logs/transformer-causal.log"; then
        note "  causal     $(grep '^median step' "$logs/transformer-causal.log" | cut -d';' -f1)"
    fi

    echo "== state-space steps on the GPU"
    "$carry/ssm_step" --device cuda 2>&1 | tee "$logs/ssm.log"
    while read -r line; do note "ssm          $line"; done < <(grep ' on cuda: ' "$logs/ssm.log" | sed 's/, peak.*//')
    grep -q 'failed' "$logs/ssm.log" && note "ssm          FAIL  $(grep failed "$logs/ssm.log" | tr '\n' ' ')"

    local limit="${QUICKSTART_SECONDS:-330}"
    echo "== quickstart with --device cuda (stopped after $limit s)"
    local started=$SECONDS
    timeout --signal=INT "$limit" "$carry/lra" run experiments/quickstart.lra --device cuda --jobs 3 \
        --out "$logs/runs" 2>&1 | tee "$logs/quickstart.log"
    local code=${PIPESTATUS[0]}
    local took=$((SECONDS - started))
    case $code in
        0) note "quickstart   PASS  in $took s: $(grep -o 'test accuracy [0-9.]*%' "$logs/quickstart.log" | tr '\n' ' ')" ;;
        124 | 130) note "quickstart   STOPPED after $took s (QUICKSTART_SECONDS): $(grep -c 'test accuracy' "$logs/quickstart.log") of 3 experiments finished" ;;
        *) note "quickstart   FAIL  (exit $code): $(grep -m1 -i 'error\|×' "$logs/quickstart.log")" ;;
    esac

    if [ -n "${OUT:-}" ]; then
        tar -czf "$OUT/gpu-check-logs.tar.gz" -C "$logs" --exclude=runs/*/*/checkpoints . 2>/dev/null || true
    fi
    echo
    echo "== summary ($gpu)"
    printf '%s\n' "${summary[@]}"
}

case "${1:-}" in
    build) build ;;
    run) run ;;
    *)
        echo "usage: benches/gpu/check.sh build | run   (see the comments at the top)" >&2
        exit 2
        ;;
esac
