#!/usr/bin/env bash
# The main job: set up, build, then check an example model and print its
# syntax tree and its checked graph.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
GRADC=build/gradc
echo "== gradc check examples/digits_mlp.grad"
$GRADC check examples/digits_mlp.grad
echo
echo "== gradc dump examples/xor.grad --stage ast"
$GRADC dump examples/xor.grad --stage ast
echo
echo "== gradc dump examples/xor.grad --stage graph"
$GRADC dump examples/xor.grad --stage graph
