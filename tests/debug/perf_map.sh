#!/usr/bin/env bash
# perf's map file (compiler/codegen/jit_debug.h): with GRADC_PERF_MAP=1, a
# process that compiles a model appends a line "ADDRESS SIZE NAME" (hex) per
# function of each compiled entry to /tmp/perf-PID.map: the entry function
# named with the model and entry point, and each kernel's outlined body with
# its kernel index, summary and model line. Also after a code-cache hit.
# Usage: perf_map.sh GRADC MODEL
set -euo pipefail
gradc=$1 model=$2
name=$(basename "$model" .grad)
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
check() {  # $1: what; runs gradc bench in a child whose pid names the map file
  GRADC_PERF_MAP=1 "$gradc" bench "$model" --seconds 0.01 --threads 2 --cache-dir "$cache" > "$cache/out" &
  pid=$!
  wait "$pid"
  map=/tmp/perf-$pid.map
  [ -s "$map" ] || { echo "FAIL ($1): no $map"; exit 1; }
  cat "$map"
  bad=$(grep -vE '^[0-9a-f]+ [0-9a-f]+ [^ ].*$' "$map" || true)
  rm -f "$map"
  [ -z "$bad" ] || { echo "FAIL ($1): malformed lines: $bad"; exit 1; }
}
for what in "cold compile" "code cache hit"; do
  out=$(check "$what") || { echo "$out"; exit 1; }
  echo "$out"
  grep -qE "^[0-9a-f]+ [0-9a-f]+ gradc_train_step \[$name train_step\]\$" <<<"$out" ||
    { echo "FAIL ($what): no line for gradc_train_step"; exit 1; }
  grep -qE "^[0-9a-f]+ [0-9a-f]+ gradc_train_step\.par[0-9]+ \[$name train_step k[0-9]+: [a-z]+ .*\([^ ]*$name\.grad:[0-9]+:[0-9]+.*\)\]\$" <<<"$out" ||
    { echo "FAIL ($what): no kernel body named with its kernel and model line"; exit 1; }
done
echo "ok: perf map names the entry and each kernel's body"
