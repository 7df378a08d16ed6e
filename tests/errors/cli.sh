#!/usr/bin/env bash
# shellcheck disable=SC2317  # the case_* functions are called indirectly
# Command-line behaviour of gradc: exit statuses and messages (SPEC section 3).
#
#   cli.sh GRADC [CASE ...]     runs the named cases, or all of them
#   cli.sh --list               prints the case names
#
# Exit status 0 success, 1 the model or data is wrong, 2 the command line is wrong;
# a status >= 128 is a crash and always fails. Bash only.
set -u

cases=(no_verb unknown_verb unknown_option no_model extra_argument set_malformed set_not_positive threads_option
  set_missing_value set_unknown_dim set_changes_shapes dump_no_stage dump_unknown_stage
  missing_file directory help verb_help binary_junk all_bytes option_not_for_verb help_lists_usage
  did_you_mean not_safetensors output_extension dot_without_dot_form unused_warnings
  embedding_id_range text_windows text_stride_and_vocab text_usage_errors text_data_errors)

if [[ ${1:-} == --list ]]; then
  printf '%s\n' "${cases[@]}"
  exit 0
fi
if [[ $# -lt 1 ]]; then
  echo "usage: cli.sh GRADC [CASE ...] | cli.sh --list" >&2
  exit 2
fi
gradc=$1
shift
if [[ ! -x $gradc ]]; then
  echo "FAIL: gradc binary '$gradc' is not executable" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc-cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

# A valid model, and one whose shapes fit only for B = 4.
cat >ok.grad <<'EOF'
dim B = 4
input x : [B, 3]
input y : [B]
param w : [3]
pred = x @ w
loss mse(pred, y)
EOF
cat >fixed.grad <<'EOF'
dim B = 4
input x : [B, 3]
input y : [B]
param w : [3]
grid = reshape(x, [4, 3])
pred = grid @ w
loss mse(pred, y)
EOF

failures=0
case_name=""
fail() {
  echo "FAIL: cli.$case_name: $*" >&2
  failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs gradc, keeps stdout/stderr in $out/$err, checks the status.
out="" err="" rc=0
run() {
  local want=$1
  shift
  timeout 60 "$gradc" "$@" >stdout.txt 2>stderr.txt
  rc=$?
  out=$(<stdout.txt)
  err=$(<stderr.txt)
  if [[ $rc -eq 124 ]]; then
    fail "gradc $* did not finish within 60 s"
  elif [[ $rc -ge 128 ]]; then
    fail "gradc $* crashed (exit status $rc, signal $((rc - 128)))"
  elif [[ $rc -ne $want ]]; then
    fail "gradc $* exited with $rc, expected $want"
  fi
  if [[ $err == *"internal compiler error"* ]]; then
    fail "gradc $* reported an internal compiler error"
  fi
  if [[ $rc -ne $want || $err == *"internal compiler error"* ]]; then
    echo "  ---- stdout ----" >&2
    printf '%s\n' "$out" | head -20 | sed 's/^/  /' >&2
    echo "  ---- stderr ----" >&2
    printf '%s\n' "$err" | head -20 | sed 's/^/  /' >&2
  fi
}
# stderr_has TEXT...: every TEXT occurs in stderr.
stderr_has() {
  local t
  for t in "$@"; do
    if [[ $err != *"$t"* ]]; then
      fail "stderr does not contain '$t'; stderr was:"
      printf '%s\n' "$err" | head -20 | sed 's/^/    /' >&2
    fi
  done
}
stdout_has() {
  local t
  for t in "$@"; do
    if [[ $out != *"$t"* ]]; then
      fail "stdout does not contain '$t'; stdout was:"
      printf '%s\n' "$out" | head -20 | sed 's/^/    /' >&2
    fi
  done
}

# ---- the cases ----
case_no_verb() {
  run 2
  stderr_has "error:" "--help"
}
case_unknown_verb() {
  run 2 frobnicate ok.grad
  stderr_has "error:" "frobnicate"
}
case_unknown_option() {
  run 2 check ok.grad --frobnicate
  stderr_has "error:" "--frobnicate"
}
case_no_model() {
  run 2 check
  stderr_has "error:"
}
case_extra_argument() {
  run 2 check ok.grad ok.grad
  stderr_has "error:"
}
case_set_malformed() {
  run 2 check ok.grad --set B
  stderr_has "error:" "--set"
  run 2 check ok.grad --set B=four
  stderr_has "error:" "four"
  run 2 check ok.grad --set =4
  stderr_has "error:" "--set"
  run 2 check ok.grad --set B=4x
  stderr_has "error:" "--set"
}
case_set_not_positive() {
  run 2 check ok.grad --set B=0
  stderr_has "error:" "B"
  run 2 check ok.grad --set B=-3
  stderr_has "error:" "B"
}
case_set_missing_value() {
  run 2 check ok.grad --set
  stderr_has "error:" "--set"
}
case_set_unknown_dim() {
  run 2 check ok.grad --set Q=3
  stderr_has "error:" "'Q'"
}
case_set_changes_shapes() {
  # --set re-checks every shape: B=4 fits the reshape on line 5, B=3 does not.
  run 0 check fixed.grad --set B=4
  run 1 check fixed.grad --set B=3
  stderr_has "fixed.grad:5:" "error:" "reshape"
  run 0 check ok.grad --set B=256
  stdout_has "B=256"
}
case_threads_option() {
  run 2 step ok.grad --threads -1
  stderr_has "error:" "--threads" "'-1'"
  run 2 step ok.grad --threads two
  stderr_has "error:" "--threads"
  run 0 bench ok.grad --threads 1 --seconds 0.05 --no-cache
  stdout_has "backend jit, 1 thread"
}
case_dump_no_stage() {
  run 2 dump ok.grad
  stderr_has "error:" "--stage"
}
case_dump_unknown_stage() {
  run 2 dump ok.grad --stage frobnicate
  stderr_has "error:" "frobnicate"
}
case_missing_file() {
  run 1 check does_not_exist.grad
  stderr_has "error:" "does_not_exist.grad"
  run 1 dump does_not_exist.grad --stage ast
  stderr_has "error:" "does_not_exist.grad"
}
case_directory() {
  mkdir -p a_directory.grad
  run 1 check a_directory.grad
  stderr_has "error:" "a_directory.grad"
}
case_help() {
  run 0 --help
  stdout_has "usage" "check" "dump"
  run 0 help
  stdout_has "usage"
}
case_verb_help() {
  run 0 check --help
  stdout_has "usage" "gradc check" "--set"
  run 0 dump --help
  stdout_has "usage" "--stage"
}
case_binary_junk() {
  # NULs, 0xff/0xfe, control bytes, a lone UTF-8 lead byte, unbalanced brackets.
  printf 'dim B = 4\n\x00\x00\xff\xfe junk \x01\x02 (((\n\x7f\xc3 = [[ \x00\nloss \xff\n\x1b[31m\x00' >junk.grad
  run 1 check junk.grad
  stderr_has "junk.grad:2:1: error:" "0x00" "^"
  run 1 dump junk.grad --stage ast
  stderr_has "junk.grad:2:1: error:"
}
case_all_bytes() {
  # Every byte value 0..255, three times, with newlines in between: a diagnostic, no crash.
  local i _
  : >bytes.grad
  for _ in 1 2 3; do
    for ((i = 0; i < 256; i++)); do printf '%b' "\\x$(printf '%02x' "$i")" >>bytes.grad; done
    printf '\n' >>bytes.grad
  done
  run 1 check bytes.grad
  stderr_has "bytes.grad:1:1: error:" "generated."
}

case_option_not_for_verb() {
  # The option table says which verb takes which option: another verb's option is a usage error.
  run 2 run ok.grad --wrt x --inputs i.st -o o.st
  stderr_has "error:" "'--wrt'" "gradc run" "grad"
  run 2 check ok.grad --seed 3
  stderr_has "error:" "'--seed'"
  run 2 dump ok.grad --stage graph --epochs 3
  stderr_has "error:" "'--epochs'" "train"
  run 0 check ok.grad --set B=8
}
case_help_lists_usage() {
  # Usage line and option list come from one table: every option of the usage has a help line.
  local verb opt
  for verb in check dump grad step run train gradcheck bench predict show text; do
    run 0 "$verb" --help
    local usage=${out%%$'\n\n'*}
    for opt in $(grep -oE -- '(^| |\[)(--[a-z-]+|-o)' <<<"$usage" | tr -d ' ['); do
      if ! grep -qE -- "^  $opt( |$)" <<<"$out"; then fail "gradc $verb --help: $opt is in the usage but has no help line"; fi
    done
  done
}
case_did_you_mean() {
  # A misspelled verb or option gets the closest one (a swap of two letters is one edit).
  run 2 trian ok.grad
  stderr_has "unknown verb 'trian'; did you mean 'train'?"
  run 2 train ok.grad --epoch 3
  stderr_has "unknown option '--epoch'; did you mean '--epochs'?"
  run 2 run ok.grad --param p.st
  stderr_has "unknown option '--param'; did you mean '--params'?"
  run 2 check ok.grad --zzzzzzzz
  stderr_has "unknown option '--zzzzzzzz'"
  [[ $err != *"did you mean"* ]] || fail "a suggestion for a name close to nothing: $err"
}
case_not_safetensors() {
  # run/grad/step read safetensors: another file type is named as such, not parsed as a header.
  printf 'a,b\n1,2\n' >data.csv
  run 1 run ok.grad --inputs data.csv -o o.safetensors
  stderr_has "--inputs data.csv: not a safetensors file (it is a CSV file); \`run\` reads .safetensors, \`predict\` reads .csv/.npy/.safetensors/IDX"
  run 1 grad ok.grad --inputs ok.grad -o o.safetensors
  stderr_has "--inputs ok.grad: not a safetensors file; \`grad\` reads .safetensors"
  [[ $err != *"header"* ]] || fail "the message speaks of a header: $err"
}
case_output_extension() {
  # run/grad/step write safetensors: a name promising another format is refused before anything runs.
  run 2 run ok.grad --inputs i.st -o pred.csv
  stderr_has "-o pred.csv: \`run\` writes a safetensors file, not .csv; name it .safetensors, or use \`gradc predict\` to write .csv"
  [[ ! -e pred.csv ]] || fail "pred.csv was written"
  run 2 grad ok.grad --inputs i.st -o g.npy
  stderr_has "\`grad\` writes a safetensors file, not .npy"
}
case_dot_without_dot_form() {
  # Only the graph stages draw as DOT: asking it of another stage is a usage error, not text.
  run 2 dump ok.grad --stage loops --format dot
  stderr_has "--format dot: the loops stage has no DOT form (dot works with --stage ast, graph, grad and opt)"
  [[ -z $out ]] || fail "something was printed: $out"
  run 0 dump ok.grad --stage opt --format dot
  stdout_has "digraph"
}
case_unused_warnings() {
  # Declared but unused inputs, params and dims are warnings at their names; the model still compiles.
  cat >unused.grad <<'EOF'
dim B = 4
dim K = 7
input x : [B, 3]
input y : [B]
input z : [B, 2]
param w : [3]
param v : [5]
pred = x @ w
loss mse(pred, y)
EOF
  run 0 check unused.grad
  stderr_has "unused.grad:2:5: warning: dim 'K' is declared but no shape or expression uses it" \
    "unused.grad:5:7: warning: input 'z' is declared but nothing reads it" \
    "unused.grad:7:7: warning: param 'v' is declared but nothing reads it (not the loss, an output or a metric); training leaves it as initialized"
  stdout_has "ok: model 'unused'"
  run 0 check ok.grad
  [[ -z $err ]] || fail "warnings for a model that uses everything: $err"
  # A dim used only as a size argument (a slice's bound) is used.
  cat >bound.grad <<'EOF'
dim B = 2
dim H = 3
input x : [B, 6]
a = slice(x, axis=1, start=0, stop=H)
loss sum(a)
EOF
  run 0 check bound.grad
  [[ -z $err ]] || fail "a warning for a dim used as a slice bound: $err"
}
case_embedding_id_range() {
  # An embedding id outside [0, V) is a data error (status 1) naming the model line, on both backends.
  cat >bag.grad <<'EOF'
input ids : i32[2, 3]
param table : [5, 4]
loss sum(embedding(ids, table))
EOF
  # A safetensors file by hand: the header's length (8 bytes, little-endian), the header, six i32 ids.
  local header='{"ids":{"dtype":"I32","shape":[2,3],"data_offsets":[0,24]}}    '
  {
    printf "$(printf '\\x%02x' ${#header})\\0\\0\\0\\0\\0\\0\\0"
    printf '%s' "$header"
    printf '\0\0\0\0\1\0\0\0\2\0\0\0\5\0\0\0\1\0\0\0\0\0\0\0'
  } >bad_ids.safetensors
  for backend in jit interp; do
    run 1 grad bag.grad --inputs bad_ids.safetensors -o g.safetensors --backend $backend
    stderr_has "bag.grad:3:10: error: " "is outside [0, 5) (the table's rows)" "loss sum(embedding(ids, table))"
  done
}

# gradc text: a text file as windows of byte ids and next-byte targets.
case_text_windows() {
  # "abcab\nba": the vocabulary 0x0a a b c (ids 0 1 2 3); windows of 3 from bytes 0 and 3,
  # targets one byte on; the 8th byte is in no window.
  printf 'abcab\nba' >tiny.txt
  run 0 text tiny.txt --window 3 -o tiny.safetensors
  stdout_has "tiny.txt: 8 bytes, a vocabulary of 4; 2 windows of 3 (stride 3; the last byte is in none)  ->  tiny.safetensors"
  run 0 show tiny.safetensors --tensor ids
  [[ $out == $'ids: i32 [2, 3]\n[0]: 1 2 3\n[1]: 1 2 0' ]] || fail "ids: $out"
  run 0 show tiny.safetensors --tensor targets
  [[ $out == $'targets: i32 [2, 3]\n[0]: 2 3 1\n[1]: 2 0 2' ]] || fail "targets: $out"
  run 0 show tiny.safetensors
  stdout_has "text.vocab = 10 97 98 99" "text.window = 3" "text.stride = 3"
  # Exactly T + 1 bytes make one window.
  run 0 text tiny.txt --window 7 -o one.safetensors
  stdout_has "1 window of 7 (stride 7)"
  # The windows feed a model's i32 [B, T] inputs through train --data.
  cat >lm.grad <<'EOF2'
dim B = 2
dim T = 3
input ids : i32[B, T]
input targets : i32[B, T]
param table : [4, 4]
loss cross_entropy(reshape(embedding(ids, table), [-1, 4]), reshape(targets, [-1]))
EOF2
  run 0 train lm.grad --data ids=tiny.safetensors --data targets=tiny.safetensors --epochs 2 -o lm.safetensors --no-progress
  stdout_has "epoch 2/2"
}
case_text_stride_and_vocab() {
  printf 'abcab\nba' >tiny.txt
  run 0 text tiny.txt --window 3 --stride 2 -o s.safetensors
  stdout_has "3 windows of 3 (stride 2)"
  run 0 show s.safetensors --tensor ids
  [[ $out == $'ids: i32 [3, 3]\n[0]: 1 2 3\n[1]: 3 1 2\n[2]: 2 0 2' ]] || fail "ids with stride 2: $out"
  # --vocab: another text's bytes, or the vocabulary a gradc text output records.
  printf 'zyx abc\n' >other.txt
  run 0 text tiny.txt --window 3 --vocab other.txt -o v.safetensors
  stdout_has "a vocabulary of 8 (of --vocab other.txt)"
  run 0 show v.safetensors --tensor ids
  [[ $out == $'ids: i32 [2, 3]\n[0]: 2 3 4\n[1]: 2 3 0' ]] || fail "ids with --vocab other.txt: $out"
  run 0 text tiny.txt --window 2 --vocab v.safetensors -o w.safetensors
  run 0 show w.safetensors
  stdout_has "text.vocab = 10 32 97 98 99 120 121 122"
}
case_text_usage_errors() {
  printf 'abcab\nba' >tiny.txt
  run 2 text
  stderr_has "gradc text: error: no file given"
  run 2 text tiny.txt -o o.safetensors
  stderr_has "--window T and -o OUT are required"
  run 2 text tiny.txt --window 3
  stderr_has "--window T and -o OUT are required"
  run 2 text tiny.txt --window 0 -o o.safetensors
  stderr_has "--window must be a positive integer, got '0'"
  run 2 text tiny.txt --window three -o o.safetensors
  stderr_has "--window must be a positive integer, got 'three'"
  run 2 text tiny.txt --window 3 --stride -1 -o o.safetensors
  stderr_has "--stride must be a positive integer, got '-1'"
  run 2 text tiny.txt --window 3 -o ids.csv
  stderr_has "-o ids.csv: \`text\` writes a safetensors file, not .csv; name it .safetensors"
  run 2 text tiny.txt tiny.txt --window 3 -o o.safetensors
  stderr_has "unexpected argument 'tiny.txt' (one file per call)"
  run 2 text tiny.txt --window 3 --epochs 2 -o o.safetensors
  stderr_has "option '--epochs' does not apply to 'gradc text'"
  [[ ! -e o.safetensors && ! -e ids.csv ]] || fail "a usage error wrote a file"
}
case_text_data_errors() {
  printf 'abcab\nba' >tiny.txt
  : >empty.txt
  run 1 text missing.txt --window 3 -o o.safetensors
  stderr_has "gradc text: error: missing.txt: cannot open: no such file or directory"
  mkdir -p a_dir
  run 1 text a_dir --window 3 -o o.safetensors
  stderr_has "gradc text: error: a_dir: cannot read: is a directory"
  run 1 text empty.txt --window 3 -o o.safetensors
  stderr_has "gradc text: error: empty.txt: the text is empty"
  run 1 text tiny.txt --window 8 -o o.safetensors
  stderr_has "gradc text: error: tiny.txt: the text has 8 bytes, too few for one window of --window 8: a window needs T + 1 = 9 bytes"
  # The output path is checked before any work: even an empty text is not read.
  run 1 text empty.txt --window 3 -o no_dir/o.safetensors
  stderr_has "gradc text: error: -o no_dir/o.safetensors: cannot write the file: the directory 'no_dir' does not exist"
  run 1 text tiny.txt --window 3 -o a_dir
  stderr_has "-o a_dir: cannot write the file: it is a directory"
  # --vocab: a byte it lacks is an error at its line and column.
  printf 'ab\n' >ab.txt
  run 1 text tiny.txt --window 3 --vocab ab.txt -o o.safetensors
  stderr_has "gradc text: error: tiny.txt:1:3: byte 'c' is not in the vocabulary of --vocab ab.txt (3 byte values), so it has no id"
  run 1 text tiny.txt --window 3 --vocab empty.txt -o o.safetensors
  stderr_has "--vocab empty.txt: the file is empty, so it gives no vocabulary"
  run 1 text tiny.txt --window 3 --vocab missing.safetensors -o o.safetensors
  stderr_has "--vocab missing.safetensors: cannot open: no such file or directory"
  # A safetensors file without the vocabulary (a checkpoint), or with a broken one.
  local header='{"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}'
  { printf "$(printf '\\x%02x' ${#header})\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$header"; printf '\0\0\0\0'; } >novocab.safetensors
  run 1 text tiny.txt --window 3 --vocab novocab.safetensors -o o.safetensors
  stderr_has "--vocab novocab.safetensors: no vocabulary: the file has no 'text.vocab' metadata entry (gradc text writes one)"
  header='{"__metadata__":{"text.vocab":"10 98 97"},"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}'
  { printf "$(printf '\\x%02x' ${#header})\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$header"; printf '\0\0\0\0'; } >badvocab.safetensors
  run 1 text tiny.txt --window 3 --vocab badvocab.safetensors -o o.safetensors
  stderr_has "--vocab badvocab.safetensors: metadata 'text.vocab': 97 is not larger than the 98 before it"
  header='{"__metadata__":{"text.vocab":"10 97 300"},"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}'
  { printf "$(printf '\\x%02x' ${#header})\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$header"; printf '\0\0\0\0'; } >bigvocab.safetensors
  run 1 text tiny.txt --window 3 --vocab bigvocab.safetensors -o o.safetensors
  stderr_has "metadata 'text.vocab': '300' is not a byte value"
  [[ ! -e o.safetensors ]] || fail "a failed gradc text wrote its output"
}

selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then selected=("${cases[@]}"); fi
for case_name in "${selected[@]}"; do
  if ! declare -F "case_$case_name" >/dev/null; then
    echo "FAIL: no such case '$case_name' (cli.sh --list shows them)" >&2
    failures=$((failures + 1))
    continue
  fi
  before=$failures
  "case_$case_name"
  if [[ $failures -eq $before ]]; then echo "PASS: cli.$case_name"; fi
done
if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
exit 0
