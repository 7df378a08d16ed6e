#!/usr/bin/env bash
# find_package(gradc) from an installed tree: install the build into a
# temporary prefix, build examples/host against it as a separate project,
# and run its programs.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/examples/host" -B "$tmp/host" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/host" >/dev/null
"$tmp/host/train_xor" "$src/examples/xor.grad" "$tmp/xor.safetensors"
test -s "$tmp/xor.safetensors"
"$tmp/host/check_model" "$src/examples/iris_mlp.grad" | grep -q "param W1 : f32\[4, 16\]"
"$tmp/host/train_iris" "$src/examples/iris_mlp.grad" "$src/examples/data/iris_train.csv" \
  "$src/examples/data/iris_test.csv" "$tmp/iris.safetensors" | grep -q "held-out accuracy"
"$tmp/host/data_parallel" "$src/examples/xor.grad" | grep -q "params match"
echo "ok: installed gradc found by find_package, host programs built and ran"
