#!/usr/bin/env bash
# The cost of a Jacobian by forward and by reverse accumulation as the number
# of outputs M grows (docs/alternatives.md): bench/models/jacobian.grad with
# `forward=true` and `forward=false`, timed by `gradc bench --ad reverse`'s
# forward line (the forward entry computes the Jacobian output), one thread.
# Usage: bench/jacobian_sweep.sh [GRADC] [M ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
G=${1:-$here/../build/gradc}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(4 16 64 256)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| outputs M | inputs | forward accumulation (ms) | reverse accumulation (ms) |"
echo "| ---: | ---: | ---: | ---: |"
for M in "${sizes[@]}"; do
  row="| $M | 16 |"
  for mode in true false; do
    sed "s/forward=true/forward=$mode/" "$here/models/jacobian.grad" > "$tmp/j.grad"
    ms=$("$G" bench "$tmp/j.grad" --ad reverse --set M=$M --seconds 0.3 --threads 1 | awk '/^forward/ { print $2 }')
    row+=" $ms |"
  done
  echo "$row"
done
