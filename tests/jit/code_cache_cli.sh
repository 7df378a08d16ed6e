#!/usr/bin/env bash
# gradc's code cache from the command line: --cache-dir and GRADC_CACHE_DIR
# make a second bench of a model load its code from the cache; --no-cache
# turns it off; an unwritable --cache-dir is not an error.
# usage: code_cache_cli.sh GRADC MODEL
set -euo pipefail
gradc=$1
model=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bench() { "$gradc" bench "$model" --seconds 0.01 "$@"; }
expect() {  # expect WHAT OUTPUT
  if ! grep -q "$1" <<<"$2"; then
    echo "expected '$1' in:"; echo "$2"; exit 1
  fi
}
out=$(bench --cache-dir "$dir/a"); expect "code cache miss" "$out"
out=$(bench --cache-dir "$dir/a"); expect "code cache hit" "$out"
[ "$(ls "$dir/a" | grep -c '\.gco$')" = 1 ] || { echo "expected one cache file"; ls -la "$dir/a"; exit 1; }
out=$(GRADC_CACHE_DIR="$dir/b" bench); expect "code cache miss" "$out"
out=$(GRADC_CACHE_DIR="$dir/b" bench); expect "code cache hit" "$out"
out=$(GRADC_CACHE_DIR="$dir/b" bench --no-cache); expect "code cache off" "$out"
out=$(GRADC_CACHE_DIR="" bench); expect "code cache off" "$out"
out=$(HOME=/nonexistent XDG_CACHE_HOME="$dir/xdg" bench); expect "code cache miss" "$out"
[ -d "$dir/xdg/gradc" ] || { echo "expected the default cache under XDG_CACHE_HOME"; exit 1; }
touch "$dir/file"
out=$(bench --cache-dir "$dir/file/sub"); expect "code cache miss" "$out"
expect "train_step median" "$out"
echo "ok"
