#!/usr/bin/env bash
# Proves that ringkv's loom models bite.
#
# Each file in loom-tests/mutants/ is a small patch to src/ that removes one
# protective step of the protocol. For each, this script copies the workspace
# to a scratch folder, applies the patch, and runs the loom models there. It
# passes only if the unpatched code passes every model and every mutant makes
# at least one model fail, and it prints which models caught which mutant.
#
# Usage: loom-tests/mutants.sh [PATCH...]   (default: every patch)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
scratch="$root/target/mutants"
work="$scratch/workspace"
logs="$scratch/logs"
mkdir -p "$logs"

patches=()
for patch in "$@"; do
    patches+=("$(realpath "$patch")")
done
if [ ${#patches[@]} -eq 0 ]; then
    patches=("$root"/loom-tests/mutants/*.patch)
fi

# Copies the workspace sources (not build output) to $work, fresh.
fresh_copy() {
    rm -rf "$work"
    mkdir -p "$work"
    cp -r "$root/Cargo.toml" "$root/Cargo.lock" "$root/src" "$work/"
    mkdir -p "$work/loom-tests"
    cp -r "$root/loom-tests/Cargo.toml" "$root/loom-tests/src" "$root/loom-tests/tests" \
        "$work/loom-tests/"
    # The root manifest names files the models never build; keep it valid.
    mkdir -p "$work/benches" "$work/examples" "$work/tests"
    cp -r "$root/benches/." "$work/benches/" 2>/dev/null || true
    cp -r "$root/examples/." "$work/examples/" 2>/dev/null || true
}

# Runs the models in $work; writes the log to $1 and prints failing models.
run_models() {
    local log=$1
    if RUSTFLAGS="--cfg loom" cargo test --release --quiet \
        --manifest-path "$work/loom-tests/Cargo.toml" \
        --target-dir "$scratch/build" --test models >"$log" 2>&1; then
        return 0
    fi
    # libtest's quiet format reports a failed test as "NAME --- FAILED".
    if ! grep -q '^[A-Za-z0-9_:]* --- FAILED$' "$log"; then
        echo "the model suite did not run (see $log):" >&2
        tail -20 "$log" >&2
        exit 2
    fi
    sed -n 's/^\([A-Za-z0-9_:]*\) --- FAILED$/\1/p' "$log" | sort
}

echo "== unpatched"
fresh_copy
failed=$(run_models "$logs/unpatched.log") || true
if [ -n "$failed" ]; then
    echo "the unpatched code fails: $failed (see $logs/unpatched.log)" >&2
    exit 1
fi
echo "all models pass"

survivors=0
printf '\n%-38s %s\n' "mutant" "models that caught it"
printf '%-38s %s\n' "------" "---------------------"
for patch in "${patches[@]}"; do
    name=$(basename "$patch" .patch)
    fresh_copy
    (cd "$work" && patch --quiet -p1 <"$patch")
    caught=$(run_models "$logs/$name.log" | tr '\n' ' ')
    if [ -z "$caught" ]; then
        caught="NONE: the mutant survived"
        survivors=$((survivors + 1))
    fi
    printf '%-38s %s\n' "$name" "$caught"
done

if [ "$survivors" -gt 0 ]; then
    echo "$survivors mutant(s) survived every model" >&2
    exit 1
fi
echo "every mutant was caught"
