// libFuzzer target over the numbers a run takes from the user rather than
// from a model file: the values of command-line options (--seed, --epochs,
// --batch, --lr, --set, ...) and the fields of a checkpoint given to --resume
// or --params (train.epoch, train.seed, train.batch, opt.step, the metadata).
// Any input must give either a run's settings or a DataError (a usage error
// for options), never a crash, hang, sanitizer report, internal error or an
// allocation that the values alone would size.
//
// The first byte picks the mode; the rest is
//   mode 0: a checkpoint (safetensors) for examples/xor.grad: its run fields
//           are read as `train --resume` reads them, and it is restored into a
//           session (as --resume and --params do), which then trains a step;
//           accepted fields must survive a write and a read unchanged;
//   mode 1: command-line arguments, one per line, after "gradc VERB" (VERB
//           picked by the second byte); parsed options compile the model with
//           their --set dims and run it on a 4-row input, so that a huge dim
//           must fail as an error naming the shape.
//
// Built two ways: with -fsanitize=fuzzer (scripts/fuzz.sh) as a fuzzer, and
// with GRADC_FUZZ_REPLAY as an ordinary program that runs the seed corpus in
// tests/fuzz/corpus_values as a test.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/driver/options.h"
#include "compiler/driver/train_state.h"
#include "gradc/gradc.h"
#include "gradc/preprocess.h"
#include "gradc/session.h"
#include "runtime/tensor_io.h"

namespace {

constexpr std::string_view kModel = R"(dim B = 4
input x : [B, 2]
input y : [B, 1]
param W1 : [2, 8] ~ xavier_uniform
param b1 : [8]
param W2 : [8, 1] ~ xavier_uniform
param b2 : [1]
h = tanh(x @ W1 + b1)
pred = sigmoid(h @ W2 + b2)
loss mse(pred, y)
output pred
optimizer adam(lr = 0.1)
)";

gradc::NamedTensors inputs(int64_t rows) {
  gradc::NamedTensors in;
  in.emplace_back("x", gradc::Tensor(gradc::DType::F32, {rows, 2}));
  in.emplace_back("y", gradc::Tensor(gradc::DType::F32, {rows, 1}));
  return in;
}

const gradc::Model& xor_model() {
  static const gradc::Model m = gradc::Model::compile_source(kModel, "xor.grad");
  return m;
}

void checkpoint(std::string_view bytes) {
  using namespace gradc;
  const std::string path = "fuzz.safetensors";
  TensorFileMetadata meta;
  NamedTensors ts;
  try {
    ts = parse_safetensors(bytes, path, &meta);
  } catch (const DataError&) {
    return;
  }
  try {
    driver::TrainState run = driver::read_train_state(ts, meta, path);
    if (run.epoch < 0 || run.epoch > driver::kMaxEpochs || run.batch < 1 || run.batch > driver::kMaxEpochs) __builtin_trap();
    // What was accepted is written and read back the same.
    if (run.seed_exact) {
      NamedTensors ck;
      TensorFileMetadata m2;
      driver::add_train_state(run, ck, m2);
      TensorFileMetadata m3;
      NamedTensors back_ts = parse_safetensors(serialize_safetensors(ck, m2), path, &m3);
      driver::TrainState back = driver::read_train_state(back_ts, m3, path);
      if (back.epoch != run.epoch || back.batch != run.batch || back.seed != run.seed || !driver::same_seed(run.seed, back))
        __builtin_trap();
    }
  } catch (const DataError&) {
  }
  try {
    Preprocessing::from_checkpoint(ts, meta, path);
    Session s(xor_model(), {Backend::Interpreter});
    s.restore(ts, path);
    if (s.step() < 0) __builtin_trap();
    (void)s.train_step(inputs(4));
  } catch (const DataError&) {
  }
}

void options(std::string_view text, uint8_t verb_byte) {
  using namespace gradc;
  static const char* const kVerbs[] = {"train", "run", "grad", "step", "gradcheck", "bench", "check", "dump"};
  std::vector<std::string> args{"gradc", kVerbs[verb_byte % 8]};
  for (size_t i = 0; i <= text.size() && args.size() < 64;) {
    size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) nl = text.size();
    args.emplace_back(text.substr(i, nl - i));
    i = nl + 1;
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::string error;
  std::optional<driver::Options> o = driver::parse_options(static_cast<int>(argv.size()), argv.data(), error);
  if (!o) {
    if (error.empty()) __builtin_trap();  // a refused command line says why
    return;
  }
  if (o->epochs < 0 || o->epochs > driver::kMaxEpochs || (o->batch && (*o->batch < 1 || *o->batch > driver::kMaxEpochs)) ||
      (o->lr && !(*o->lr >= 0)))
    __builtin_trap();
  // The seed and the run fields go into a checkpoint and back exactly.
  driver::TrainState st{o->epochs, o->seed, true, 0, o->batch.value_or(1)};
  NamedTensors ck;
  TensorFileMetadata meta;
  driver::add_train_state(st, ck, meta);
  try {
    driver::TrainState back = driver::read_train_state(ck, meta, "fuzz");
    if (!driver::same_seed(o->seed, back) || back.seed != o->seed) __builtin_trap();
  } catch (const DataError&) {
    if (o->epochs <= driver::kMaxEpochs && o->batch.value_or(1) >= 1) __builtin_trap();
  }
  // --set dims: compiled, then run on 4 rows; a dim that does not fit is a
  // diagnostic or a DataError, never a crash or an allocation of its size.
  if (o->dims.empty()) return;
  CompileOptions co;
  co.dims = o->dims;
  Model m = Model::compile_source(kModel, "xor.grad", co);
  if (!m.ok()) {
    if (m.diagnostics().empty()) __builtin_trap();
    return;
  }
  try {
    Session s(m, {Backend::Interpreter, o->seed});
    (void)s.forward(inputs(4));
  } catch (const DataError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (data[0] % 2 == 0) checkpoint(rest);
  else options(rest, data[1]);
  return 0;
}

#include "tests/fuzz/replay_main.h"
