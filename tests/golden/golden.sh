#!/usr/bin/env bash
# Golden printout test: compares `gradc dump MODEL --stage STAGE [--format F]
# [--entry E]` with tests/golden/<model>.<stage>[.<format>][.<entry>].txt.
# Regenerate all goldens with: GRADC_UPDATE_GOLDEN=1 ctest --test-dir build -R golden
# Usage: golden.sh GRADC MODEL STAGE [FORMAT [ENTRY]]
set -euo pipefail
gradc=$1 model=$2 stage=$3 format=${4:-text} entry=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$(basename "$model" .grad)
suffix=$stage
[ "$format" = text ] || suffix="$stage.$format"
entry_args=()
[ -z "$entry" ] || { suffix="$suffix.$entry"; entry_args=(--entry "$entry"); }
expected="$here/$name.$suffix.txt"
cd "$root"
actual=$("$gradc" dump "examples/$name.grad" --stage "$stage" --format "$format" "${entry_args[@]}")
if [ "${GRADC_UPDATE_GOLDEN:-0}" = 1 ]; then
  printf '%s\n' "$actual" > "$expected"
  echo "updated $expected"
  exit 0
fi
if [ ! -f "$expected" ]; then
  echo "missing golden file $expected (run with GRADC_UPDATE_GOLDEN=1 to create it)"
  exit 1
fi
if ! diff -u "$expected" <(printf '%s\n' "$actual"); then
  echo "golden mismatch for $name --stage $stage --format $format ${entry_args[*]} (regenerate with GRADC_UPDATE_GOLDEN=1 if intended)"
  exit 1
fi
