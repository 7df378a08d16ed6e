#!/usr/bin/env bash
# Recurrent models written with scan (examples/rnn) trained end to end by
# gradc train, on tasks with a known answer.
# Usage: sequence_test.sh GRADC CASE [RNN_SAMPLE]
#   sine_elman, sine_gru, sine_lstm: predict the clean next value of noisy sine
#     waves (examples/rnn/sines_*.csv); held out, the trained cell must beat the
#     best linear predictor on all 16 values (RMSE 0.119 on sines_test.csv;
#     repeating the last value: 0.398; predicting 0: 0.759), the untrained one not;
#   char_lm_pattern: gradc text on a repeated sentence, char_lm.grad trained on
#     its windows, and rnn_sample (the host program) continuing a prompt with the
#     most likely bytes must write the sentence on.
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
R=$E/rnn
sines=(--data x=$R/sines_train.csv:!y --data y=$R/sines_train.csv:y
       --eval x=$R/sines_test.csv:!y --eval y=$R/sines_test.csv:y --no-progress)
# The last eval RMSE of a log (column 4: the metric rmse).
last_rmse() { tail -n 1 "$1" | cut -d, -f4; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

sine() {  # MODEL: untrained (an epoch at learning rate 0) above 0.5, trained below 0.1
  "$G" train $R/$1.grad "${sines[@]}" --epochs 1 --lr 0 -o $tmp/u.st --log $tmp/u.csv > $tmp/out 2>&1 ||
    fail "untrained run failed: $(cat $tmp/out)"
  untrained=$(last_rmse $tmp/u.csv)
  below 0.5 "$untrained" || fail "the untrained $1 already has held-out RMSE $untrained < 0.5"
  "$G" train $R/$1.grad "${sines[@]}" --epochs 100 --lr-schedule cosine -o $tmp/c.st --log $tmp/log.csv > $tmp/out 2>&1 ||
    fail "train failed: $(cat $tmp/out)"
  rmse=$(last_rmse $tmp/log.csv)
  below "$rmse" 0.1 || fail "$1: held-out RMSE $rmse is not below 0.1 (the best linear predictor: 0.119)"
  echo "$1: held-out RMSE $untrained untrained, $rmse after 100 epochs"
}

case $case in
  sine_elman) sine elman ;;
  sine_gru) sine gru ;;
  sine_lstm) sine lstm ;;
  char_lm_pattern)
    S=${3:?the rnn_sample program}
    for _ in $(seq 60); do printf 'the quick brown fox jumps over the lazy dog.\n'; done > $tmp/fox.txt
    "$G" text $tmp/fox.txt --window 16 --stride 3 -o $tmp/fox.safetensors > $tmp/out 2>&1 || fail "text: $(cat $tmp/out)"
    grep -q "a vocabulary of 29;" $tmp/out || fail "expected 29 distinct bytes: $(cat $tmp/out)"
    dims=(--set T=16 --set V=29)
    "$G" train $R/char_lm.grad --data ids=$tmp/fox.safetensors --data targets=$tmp/fox.safetensors "${dims[@]}" \
      --set B=16 --epochs 6 --no-progress -o $tmp/fox.st --log $tmp/log.csv > $tmp/out 2>&1 || fail "train: $(cat $tmp/out)"
    first=$(sed -n 2p $tmp/log.csv | cut -d, -f2) last=$(tail -n 1 $tmp/log.csv | cut -d, -f2)
    below "$last" 0.5 || fail "the training loss per character fell from $first only to $last, not below 0.5"
    "$S" $R/char_lm.grad $tmp/fox.st $tmp/fox.safetensors "${dims[@]}" --prompt 'the quick brown' --length 45 \
      --temperature 0 > $tmp/sample 2>&1 || fail "rnn_sample: $(cat $tmp/sample)"
    want=$'the quick brown fox jumps over the lazy dog.\nthe quick brown'
    [ "$(cat $tmp/sample)" = "$want" ] || fail "rnn_sample wrote '$(cat $tmp/sample)', expected '$want'"
    # Sampled with a temperature, every byte comes from the vocabulary.
    "$S" $R/char_lm.grad $tmp/fox.st $tmp/fox.safetensors "${dims[@]}" --prompt 'the lazy' --length 200 --seed 3 \
      > $tmp/sample 2>&1 ||
      fail "rnn_sample: $(cat $tmp/sample)"
    [ "$(wc -c < $tmp/sample)" = 209 ] || fail "expected 8 + 200 bytes and a newline: $(cat $tmp/sample)"
    tr -d 'a-z .\n' < $tmp/sample | grep -q . && fail "a byte outside the vocabulary: $(cat $tmp/sample)"
    echo "loss per character $first -> $last; greedy sample: $(head -c 60 $tmp/sample | tr '\n' '|')" ;;
  *) fail "no such case '$case'" ;;
esac
exit 0
