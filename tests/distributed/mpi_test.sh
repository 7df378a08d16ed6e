#!/usr/bin/env bash
# `mpirun -np 2 gradc train` on this machine, over loopback (docs/distributed.md):
# the same params as one process with the same global batch, resuming across
# rank counts, rank 0 alone writing, and a failing rank stopping the whole job
# with a message instead of a hang (every mpirun runs under `timeout`).
# Skipped (status 77) only when mpirun is missing; scripts/setup.sh installs it.
# Usage: mpi_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/../train/lib.sh"
PY=/usr/bin/python3
command -v mpirun > /dev/null || { echo "SKIP: mpirun is not installed (scripts/setup.sh installs openmpi-bin)"; exit 77; }
# Containers run as root, without a network beyond loopback and with fewer
# cores than ranks: allow all three, and keep Open MPI to shared memory.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
# Each case's session directory under its own temporary folder: two mpiruns
# started at once (ctest -j, or a second checkout's tests) otherwise race to
# create /tmp/ompi.HOST.UID, and the loser fails in orte_init ("File exists").
export OMPI_MCA_orte_tmpdir_base=$tmp
# Under the sanitizer build (scripts/test.sh sets ASAN_OPTIONS), LeakSanitizer
# would report what Open MPI leaves allocated at MPI_Finalize: suppress those by
# library, with full stacks (its libraries have no frame pointers) and its
# components kept loaded so that their frames have names.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" OMPI_MCA_mca_base_component_disable_dlclose=1
  export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(cd "$(dirname "$0")" && pwd)/openmpi.supp"
fi
mpi() { timeout 60 mpirun --allow-run-as-root --oversubscribe -np "$@"; }
iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --standardize x --no-progress --seed 3)
digits=(--data x=$D/digits_train.csv --data label=$D/digits_train.csv --no-progress)
# Whether every tensor of two checkpoints agrees to TOL relative to the tensor's largest
# magnitude: params to TOL, the optimizer state (a running mean of gradients, whose
# rounding differs with the summation order) to 10 TOL.
close() {
  $PY - "$1" "$2" "$3" <<'PY'
import json, struct, sys
def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        fmt = {"F32": "f", "F64": "d", "I32": "i"}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = struct.unpack("<%d%s" % ((b - a) // struct.calcsize(fmt), fmt), raw[8 + n + a:8 + n + b])
    return out
a, b, tol = tensors(sys.argv[1]), tensors(sys.argv[2]), float(sys.argv[3])
if a.keys() != b.keys(): sys.exit("different tensors: %s vs %s" % (sorted(a), sorted(b)))
bad = 0
for k in a:
    scale = max(max(abs(x) for x in a[k]), 1e-30)
    err = max(abs(x - y) for x, y in zip(a[k], b[k]))
    if err > (10 * tol if k.startswith("opt.") else tol) * scale: print("%s: max difference %g, scale %g" % (k, err, scale)); bad = 1
sys.exit(bad)
PY
}

case $case in
  partial_batches)  # a dynamic batch dim's last, partial batch in shards of unequal sizes, one of none
    for rows in 117 113; do  # partial batches of 5 rows (3 and 2 a rank) and of 1 row (1 and 0)
      head -$((rows + 1)) $D/iris_train.csv > $tmp/part.csv
      part=(--data x=$tmp/part.csv --data label=$tmp/part.csv --standardize x --no-progress --seed 3 --batch 16)
      "$G" train $E/iris_mlp.grad "${part[@]}" --epochs 3 -o $tmp/one.st > $tmp/out 2>&1 || fail "one: $(cat $tmp/out)"
      mpi 2 "$G" train $E/iris_mlp.grad "${part[@]}" --epochs 3 -o $tmp/two.st > $tmp/out 2>&1 ||
        fail "two ranks, $rows rows: $(cat $tmp/out)"
      grep -q "wrote $tmp/two.st (3 epochs, 24 steps, .*; 2 ranks" $tmp/out || fail "$rows rows: $(cat $tmp/out)"
      close $tmp/one.st $tmp/two.st 1e-6 || fail "$rows rows: the params differ"
    done
    echo "partial batches as one process trains them" ;;
  matches_one_process)  # 2 ranks of 8 rows end where 1 process of 16 rows does (adam; sgd with momentum);
    # iris_mlp's batch dim is dynamic: each epoch's last 8 rows are a partial batch, 4 rows a rank
    "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 3 -o $tmp/one.st > $tmp/out 2>&1 || fail "one: $(cat $tmp/out)"
    mpi 2 "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 3 -o $tmp/two.st > $tmp/out 2>&1 ||
      fail "two ranks: $(cat $tmp/out)"
    grep -q "wrote $tmp/two.st (3 epochs, 24 steps, .*; 2 ranks" $tmp/out || fail "no summary line: $(cat $tmp/out)"
    [ "$(grep -c '^epoch' $tmp/out)" = 3 ] || fail "the epochs are not printed once: $(cat $tmp/out)"
    close $tmp/one.st $tmp/two.st 1e-6 || fail "iris: the params differ"
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 2 -o $tmp/one.st > $tmp/out 2>&1 || fail "one: $(cat $tmp/out)"
    mpi 2 "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 2 -o $tmp/two.st > $tmp/out 2>&1 ||
      fail "two ranks: $(cat $tmp/out)"
    close $tmp/one.st $tmp/two.st 1e-6 || fail "digits: the params differ"
    # The test can fail: another batch gives other params.
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 2 --batch 32 -o $tmp/other.st > /dev/null 2>&1 || fail other
    ! close $tmp/one.st $tmp/other.st 1e-6 > /dev/null || fail "the comparison cannot tell runs apart" ;;
  resume_across_ranks)  # a 2-rank checkpoint resumes on 1 rank and the other way round, ending where 1 process does
    "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 4 -o $tmp/ref.st > /dev/null 2>&1 || fail ref
    mpi 2 "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 2 -o $tmp/a.st > $tmp/out 2>&1 || fail "$(cat $tmp/out)"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 4 --resume $tmp/a.st -o $tmp/a.st > $tmp/out 2>&1 ||
      fail "resume on 1: $(cat $tmp/out)"
    close $tmp/ref.st $tmp/a.st 1e-6 || fail "2 then 1 ranks"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 2 -o $tmp/b.st > /dev/null 2>&1 || fail first
    mpi 2 "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 4 --resume $tmp/b.st -o $tmp/b.st > $tmp/out 2>&1 ||
      fail "resume on 2: $(cat $tmp/out)"
    grep -q "^epoch 3/4" $tmp/out || fail "did not resume at epoch 3: $(cat $tmp/out)"
    close $tmp/ref.st $tmp/b.st 1e-6 || fail "1 then 2 ranks" ;;
  rank_zero_writes)  # checkpoint, log and plot come from rank 0 alone: each rank runs in its own directory
    mkdir -p $tmp/r0 $tmp/r1
    (cd $tmp && mpi 1 bash -c "cd r0 && exec $G train $E/iris_mlp.grad ${iris[*]} --batch 16 --epochs 2 -o c.st --log log.csv --plot p.svg --keep-best accuracy --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv" \
      : -np 1 bash -c "cd r1 && exec $G train $E/iris_mlp.grad ${iris[*]} --batch 16 --epochs 2 -o c.st --log log.csv --plot p.svg --keep-best accuracy --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv") \
      > $tmp/out 2>&1 || fail "$(cat $tmp/out)"
    for f in c.st c.best.st log.csv p.svg; do [ -s $tmp/r0/$f ] || fail "rank 0 did not write $f: $(ls $tmp/r0)"; done
    [ -z "$(ls -A $tmp/r1)" ] || fail "rank 1 wrote files: $(ls -A $tmp/r1)"
    [ "$(grep -c '^epoch .* eval accuracy' $tmp/out)" = 2 ] || fail "the epochs are not printed once each: $(cat $tmp/out)" ;;
  uneven_batch)  # a batch that does not split into equal shards is refused before training
    mpi 2 "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 15 --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    [ $? = 1 ] || fail "status $?: $(cat $tmp/out)"
    grep -q "gradc train: error: batches of 15 rows do not split evenly across the 2 ranks of this mpirun; give --batch a multiple of 2" $tmp/out ||
      fail "message: $(cat $tmp/out)"
    [ ! -e $tmp/c.st ] || fail "a checkpoint was written" ;;
  buffers_refused)  # a model with buffers (batch_norm's running statistics) is refused: the split step does not update them
    printf '%s\n' 'dim B = 16' 'input x : [B, 4]' 'input label : i32[B]' 'param W : [4, 3] ~ xavier_uniform' \
      'param g : [3] ~ ones' 'param b : [3]' 'buffer rm : [3]' 'buffer rv : [3] ~ ones' \
      'loss cross_entropy(batch_norm(x @ W, rm, rv, g, b), label)' > $tmp/bn.grad
    mpi 2 "$G" train $tmp/bn.grad "${iris[@]}" --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    [ $? = 1 ] || fail "status $?: $(cat $tmp/out)"
    grep -q "gradc train: error: the model has buffers ('rm'), which data-parallel training does not update yet" $tmp/out ||
      fail "message: $(cat $tmp/out)"
    [ ! -e $tmp/c.st ] || fail "a checkpoint was written"
    "$G" train $tmp/bn.grad "${iris[@]}" --epochs 1 -o $tmp/c.st > $tmp/out 2>&1 || fail "one process: $(cat $tmp/out)" ;;
  gradient_free_refused)  # genetic and es compute no gradient to average: refused before the first step
    for opt in "genetic(population = 8)" "es(population = 4)"; do
      sed "s/^optimizer .*/optimizer $opt/" $E/iris_mlp.grad > $tmp/gf.grad
      mpi 2 "$G" train $tmp/gf.grad "${iris[@]}" --batch 16 --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
      [ $? = 1 ] || fail "$opt: status $?: $(cat $tmp/out)"
      grep -q "gradc train: error: the optimizer ${opt%%(*} computes no gradient to average across ranks" $tmp/out ||
        fail "$opt: message: $(cat $tmp/out)"
      [ ! -e $tmp/c.st ] || fail "$opt: a checkpoint was written"
    done ;;
  different_data)  # a rank given other data (another row count) stops the job before the first step
    head -101 $D/iris_train.csv > $tmp/short.csv
    mpi 1 "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 1 -o $tmp/c.st \
      : -np 1 "$G" train $E/iris_mlp.grad --data x=$tmp/short.csv --data label=$tmp/short.csv --standardize x \
        --no-progress --seed 3 --batch 16 --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    [ $? = 1 ] || fail "status $?: $(cat $tmp/out)"
    grep -q "gradc train: error: the 2 ranks were not given the same run" $tmp/out || fail "message: $(cat $tmp/out)" ;;
  missing_file)  # a data file missing on one rank: that rank says so and the job stops
    mpi 1 "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 16 --epochs 50 -o $tmp/c.st \
      : -np 1 "$G" train $E/iris_mlp.grad --data x=$tmp/none.csv --data label=$tmp/none.csv --standardize x \
        --no-progress --seed 3 --batch 16 --epochs 50 -o $tmp/c.st > $tmp/out 2>&1
    [ $? = 1 ] || fail "status $?: $(cat $tmp/out)"
    grep -q "gradc train: error: .*none.csv" $tmp/out || fail "message: $(cat $tmp/out)" ;;
  killed_rank)  # a rank killed in mid-training stops the others (no hang)
    mpi 1 "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 1000000 -o $tmp/c.st \
      : -np 1 timeout -s KILL 2 "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 1000000 -o $tmp/c.st > $tmp/out 2>&1
    status=$?
    [ $status != 0 ] && [ $status != 124 ] || fail "status $status: $(cat $tmp/out)"
    grep -qi "killed\|exited\|signal" $tmp/out || fail "message: $(cat $tmp/out)" ;;
  signal_stops_together)  # SIGTERM to the ranks (as a batch system sends it): all stop at one step, rank 0 writes a checkpoint that resumes
    timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 "$G" train $E/digits_mlp.grad "${digits[@]}" \
      --epochs 100000 -o $tmp/s.st > $tmp/out 2>&1 &
    pid=$!  # timeout's; mpirun is its child, the ranks are mpirun's
    for _ in $(seq 300); do grep -q "^epoch 1/" $tmp/out && break; sleep 0.1; done  # the loop runs
    kill -TERM $(pgrep -P "$(pgrep -P $pid)" -x gradc)
    wait $pid
    [ $? != 124 ] || fail "the job did not stop: $(cat $tmp/out)"
    grep -q "gradc train: wrote $tmp/s.st (after epoch [0-9]*, step [0-9]* of 22); to resume the run:" $tmp/out ||
      grep -q "gradc train: wrote $tmp/s.st (after epoch [0-9]*); to resume the run:" $tmp/out || fail "message: $(cat $tmp/out)"
    [ "$(grep -c 'stopping after' $tmp/out)" = 1 ] || fail "not rank 0 alone: $(cat $tmp/out)"
    e=$(/usr/bin/python3 -c "
import json, struct, sys
raw = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n])
a, b = h['train.epoch']['data_offsets']; print(struct.unpack('<i', raw[8 + n + a:8 + n + b])[0])" $tmp/s.st) ||
      fail "no checkpoint: $(cat $tmp/out)"
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs $((e + 2)) --resume $tmp/s.st -o $tmp/s.st > $tmp/out 2>&1 ||
      fail "resume: $(cat $tmp/out)" ;;
  plain_run_without_mpi)  # without a launcher gradc does not initialize MPI (it would print or fail without one)
    env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 1 -o $tmp/c.st \
      > $tmp/out 2>&1 || fail "$(cat $tmp/out)"
    ! grep -q "ranks" $tmp/out || fail "a plain run talks of ranks: $(cat $tmp/out)" ;;
  *) fail "unknown case $case" ;;
esac
