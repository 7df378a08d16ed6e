// `gradc train` (SPEC 3): load the data, then for every epoch shuffle the
// rows (seeded by seed and epoch, so a resumed run sees the same order),
// run train_step on each full batch, evaluate on the held-out data, report,
// log, plot, and write checkpoints atomically.
#include "compiler/driver/train.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>

#include "compiler/driver/train_state.h"
#include "gradc/gradc.h"
#include "gradc/preprocess.h"
#include "gradc/session.h"
#include "runtime/csv.h"
#include "runtime/output_file.h"
#include "runtime/plot.h"
#include "runtime/random.h"
#include "runtime/tensor_io.h"

namespace gradc::driver {
namespace {

using Clock = std::chrono::steady_clock;

// A data set: one tensor per model input, all with the same number of rows.
struct Dataset {
  int64_t rows = 0;
  NamedTensors columns;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

DType parse_dtype_name(const std::string& s) { return s == "f64" ? DType::F64 : s == "i32" ? DType::I32 : DType::F32; }

// Converts to the model's dtype: between float dtypes, i32 to float, and
// float to i32 when every value is an integer in range (labels saved as floats).
Tensor convert(const Tensor& t, DType to, const std::string& what) {
  if (t.dtype() == to) return t;
  Tensor r(to, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.get(i);
    if (to == DType::I32 && !(v == std::floor(v) && std::fabs(v) < 2147483648.0))
      throw DataError(fmt::format("{}: element {} is {}, but the model declares i32 (class ids must be integers)", what,
                                  i, v));
    r.set(i, v);
  }
  return r;
}

// Loads NAME=PATH[:COLUMNS] sources for the model's inputs.
Dataset load(const std::vector<std::pair<std::string, std::string>>& specs, const ModelInfo& info, const char* flag) {
  Dataset ds;
  std::map<std::string, CsvTable> csv_cache;
  for (const auto& [name, source] : specs) {
    const TensorInfo* input = nullptr;
    for (const TensorInfo& t : info.inputs)
      if (t.name == name) input = &t;
    if (!input) {
      std::string names;
      for (const TensorInfo& t : info.inputs) names += (names.empty() ? "" : ", ") + t.name;
      throw DataError(fmt::format("{} {}=...: the model has no input '{}' (its inputs: {})", flag, name, name, names));
    }
    if (find_tensor(ds.columns, name)) throw DataError(fmt::format("{}: input '{}' is given twice", flag, name));
    DType dtype = parse_dtype_name(input->dtype);
    std::string path = source, columns;
    if (auto colon = source.rfind(':'); colon != std::string::npos && ends_with(source.substr(0, colon), ".csv")) {
      path = source.substr(0, colon);
      columns = source.substr(colon + 1);
    }
    std::string what = fmt::format("{} {}={}", flag, name, source);
    Tensor t;
    if (ends_with(path, ".csv")) {
      auto it = csv_cache.find(path);
      if (it == csv_cache.end()) it = csv_cache.emplace(path, read_csv(path)).first;
      const CsvTable& table = it->second;
      if (columns.empty()) {
        bool named = std::find(table.header.begin(), table.header.end(), name) != table.header.end();
        columns = named ? name : "!label";
      }
      t = csv_columns(table, columns, dtype, input->shape.size() == 1);
    } else {
      NamedTensors file = read_tensor_file(path, name);
      const Tensor* found = find_tensor(file, name);
      if (!found) throw DataError(fmt::format("{}: '{}' has no tensor named '{}'", what, path, name));
      t = convert(*found, dtype, what);
    }
    // Rows along the first axis; the rest must be the input's per-row shape.
    std::vector<int64_t> row(input->shape.begin() + 1, input->shape.end());
    std::vector<int64_t> got(t.shape().empty() ? t.shape().begin() : t.shape().begin() + 1, t.shape().end());
    if (t.rank() == 0 || got != row) {
      Tensor like(dtype, input->shape);
      throw DataError(fmt::format("{}: the data has shape {} but input '{}' is {}: every row must be {}", what,
                                  t.type_string(), name, like.type_string(),
                                  row.empty() ? std::string("a scalar") : type_string(dtype, row)));
    }
    if (ds.columns.empty()) ds.rows = t.shape()[0];
    else if (t.shape()[0] != ds.rows)
      throw DataError(fmt::format("{}: {} rows, but the other {} data has {}", what, t.shape()[0], flag, ds.rows));
    ds.columns.emplace_back(name, std::move(t));
  }
  return ds;
}

// Rows `order[begin, begin + n)` of every column, as a batch.
NamedTensors gather(const Dataset& ds, const std::vector<int64_t>& order, int64_t begin, int64_t n) {
  NamedTensors batch;
  for (const auto& [name, t] : ds.columns) {
    std::vector<int64_t> shape = t.shape();
    shape[0] = n;
    Tensor b(t.dtype(), shape);
    size_t row_bytes = t.nbytes() / static_cast<size_t>(ds.rows);
    const char* src = static_cast<const char*>(t.raw());
    char* dst = static_cast<char*>(b.raw());
    for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * row_bytes, src + order[begin + i] * row_bytes, row_bytes);
    batch.emplace_back(name, std::move(b));
  }
  return batch;
}

// The permutation of epoch `epoch` (1-based): a function of (seed, epoch) only.
std::vector<int64_t> shuffle(int64_t rows, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  RandomStream rng(splitmix64(seed ^ 0x5bd1e995ULL) + static_cast<uint64_t>(epoch) * 0x9e3779b97f4a7c15ULL);
  for (int64_t i = rows - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng.uniform() * static_cast<double>(i + 1));
    std::swap(order[i], order[std::min(j, i)]);
  }
  return order;
}

struct EvalResult {
  double loss = NAN;
  std::vector<double> metrics;
};

// Loss and metrics over all rows of `ds`: full batches in `full`, the rest in `rest`.
EvalResult evaluate(const Dataset& ds, int64_t batch, Session& full, Session* rest, const ModelInfo& info) {
  EvalResult r;
  r.loss = 0;
  r.metrics.assign(info.metrics.size(), 0.0);
  std::vector<int64_t> order(static_cast<size_t>(ds.rows));
  std::iota(order.begin(), order.end(), 0);
  auto add = [&](Session& s, int64_t begin, int64_t n) {
    NamedTensors out = s.forward(gather(ds, order, begin, n));
    for (const auto& [name, t] : out) {
      if (name == "loss") r.loss += t.get(0) * static_cast<double>(n);
      for (size_t k = 0; k < info.metrics.size(); ++k)
        if (name == "metric." + info.metrics[k].name) r.metrics[k] += t.get(0) * static_cast<double>(n);
    }
  };
  int64_t begin = 0;
  for (; begin + batch <= ds.rows; begin += batch) add(full, begin, batch);
  if (begin < ds.rows) add(*rest, begin, ds.rows - begin);
  r.loss /= static_cast<double>(ds.rows);
  for (double& m : r.metrics) m /= static_cast<double>(ds.rows);
  return r;
}

struct History {
  std::vector<double> train_loss, eval_loss;
  std::vector<std::vector<double>> metrics;  // per metric, per epoch
};

void write_log(const std::string& path, const History& h, const ModelInfo& info) {
  std::string s = "epoch,train_loss,eval_loss";
  for (const TensorInfo& m : info.metrics) s += ",eval_" + m.name;
  s += "\n";
  for (size_t e = 0; e < h.train_loss.size(); ++e) {
    s += fmt::format("{},{},{}", e + 1, h.train_loss[e], h.eval_loss[e]);
    for (const auto& m : h.metrics) s += fmt::format(",{}", m[e]);
    s += "\n";
  }
  write_output_file(path, s);
}

// The rows of an earlier log, for a resumed run (epochs up to `epochs`).
History read_log(const std::string& path, const ModelInfo& info, int64_t epochs) {
  History h;
  h.metrics.resize(info.metrics.size());
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return h;
  while (std::getline(in, line) && static_cast<int64_t>(h.train_loss.size()) < epochs) {
    std::vector<double> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(std::strtod(cell.c_str(), nullptr));
    if (cells.size() != 3 + info.metrics.size()) break;
    h.train_loss.push_back(cells[1]);
    h.eval_loss.push_back(cells[2]);
    for (size_t k = 0; k < info.metrics.size(); ++k) h.metrics[k].push_back(cells[3 + k]);
  }
  return h;
}

// The dim of the inputs' first axis: every data input must share it.
std::string batch_dim(const ModelInfo& info, const Dataset& ds) {
  std::string dim;
  for (const auto& [name, t] : ds.columns)
    for (const TensorInfo& in : info.inputs)
      if (in.name == name) {
        std::string d = in.dim_names.empty() ? "" : in.dim_names[0];
        if (d.empty())
          throw DataError(fmt::format("input '{}' must have a dim as its first axis (for example [B, ...]) to be "
                                      "sliced into batches", name));
        if (!dim.empty() && d != dim)
          throw DataError(fmt::format("inputs batch along different dims ('{}' and '{}')", dim, d));
        dim = d;
      }
  return dim;
}

// Checks that a file can be written at `path` the way write_output_file
// writes it (a new file in the target's directory, renamed over the target;
// a device or FIFO written in place), so that a mistyped -o, --log or --plot
// fails before training rather than after every epoch. A probe file is
// created and removed; an existing file at `path` is not touched, and a FIFO
// is not opened (that would end its reader's input).
void check_writable(const std::string& path, const char* flag) {
  OutputTarget target;
  try {
    target = resolve_output(path);
  } catch (const DataError& e) {
    std::string why = e.what();
    if (why.starts_with(path + ": ")) why = why.substr(path.size() + 2);
    if (why == "cannot write: is a directory") why = "it is a directory";
    else if (why.starts_with("cannot write: ")) why = why.substr(14);
    throw DataError(fmt::format("{} {}: cannot write the file: {}", flag, path, why));
  }
  if (target.in_place) {
    if (access(target.path.c_str(), W_OK) == 0) return;
    throw DataError(fmt::format("{} {}: cannot write the file: {}", flag, path, std::strerror(errno)));
  }
  const std::string& real = target.path;
  size_t slash = real.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : real.substr(0, slash);
  std::string probe = dir + "/.gradc-write-check-XXXXXX";
  int fd = mkstemp(probe.data());
  if (fd >= 0) {
    close(fd);
    unlink(probe.c_str());
    return;
  }
  int err = errno;
  struct stat st {};
  std::string why = fmt::format("cannot create a file in the directory '{}': {}", dir, std::strerror(err));
  if (stat(dir.c_str(), &st) != 0 && errno == ENOENT) why = fmt::format("the directory '{}' does not exist", dir);
  else if (stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) why = fmt::format("'{}' is not a directory", dir);
  throw DataError(fmt::format("{} {}: cannot write the file: {}", flag, path, why));
}

Model compile(const Options& o, const std::string& dim, int64_t batch) {
  CompileOptions co;
  co.dims = o.dims;
  bool set = false;
  for (auto& [k, v] : co.dims)
    if (k == dim) v = batch, set = true;
  if (!set) co.dims.emplace_back(dim, batch);
  Model m = Model::compile_file(o.model, co);
  if (!m.ok()) throw DataError(render_all(m.diagnostics()));
  return m;
}

}  // namespace

int cmd_train(const Options& o) {
  auto start_time = Clock::now();
  if ((!o.log.empty() || !o.plot.empty()) && o.epochs > kMaxLoggedEpochs)
    throw DataError(fmt::format("--epochs {} with {}: the log and the plot cover at most {} epochs", o.epochs,
                                o.log.empty() ? "--plot" : "--log", kMaxLoggedEpochs));
  check_writable(o.output, "-o");
  if (!o.log.empty()) check_writable(o.log, "--log");
  if (!o.plot.empty()) check_writable(o.plot, "--plot");
  // A first compile for the model's interface; the batch size is bound below.
  CompileOptions probe_opts;
  probe_opts.dims = o.dims;
  Model probe = Model::compile_file(o.model, probe_opts);
  if (!probe.ok()) {
    std::cerr << render_all(probe.diagnostics());
    return probe.options_error() ? 2 : 1;
  }
  ModelInfo info = probe.info();
  Dataset train = load(o.data, info, "--data");
  Dataset eval = load(o.eval, info, "--eval");
  if (train.rows == 0) throw DataError("--data: no training data given");
  std::string dim = batch_dim(info, train);
  int64_t batch = o.batch.value_or(0);
  if (!o.batch)
    for (const auto& [k, v] : info.dims)
      if (k == dim) batch = v;
  if (batch > train.rows)
    throw DataError(fmt::format("--batch {} is larger than the {} training rows", batch, train.rows));

  // Standardization: fit on the training data, or, when resuming, the
  // statistics the checkpoint stored (so the resumed run sees the same numbers
  // and --standardize may be left out); a different set of inputs is an error.
  NamedTensors ckpt;
  Preprocessing pre;
  for (size_t i = 0; i < o.standardize.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (o.standardize[i] == o.standardize[j])
        throw DataError(fmt::format("--standardize {} is given twice", o.standardize[i]));
  TrainState run;  // what the checkpoint of --resume recorded
  if (!o.resume.empty()) {
    TensorFileMetadata meta;
    ckpt = read_safetensors(o.resume, &meta);
    run = read_train_state(ckpt, meta, o.resume);  // checked before anything uses it
    pre = Preprocessing::from_checkpoint(ckpt, meta, o.resume);
    bool same = o.standardize.size() == pre.standardize.size();
    for (const std::string& name : o.standardize) same = same && pre.find(name);
    if (!o.standardize.empty() && !same) {
      std::string given;
      for (const std::string& name : o.standardize) given += (given.empty() ? "" : ",") + name;
      throw DataError(fmt::format("--resume {}: the run was trained {}, but this command gives --standardize {}; "
                                  "resume without --standardize to use the statistics stored in the checkpoint",
                                  o.resume,
                                  pre.empty() ? std::string("without --standardize")
                                              : fmt::format("with --standardize {}", pre.inputs_text()),
                                  given));
    }
  } else {
    for (const std::string& name : o.standardize) {
      const Tensor* t = find_tensor(train.columns, name);
      if (!t || t->dtype() == DType::I32)
        throw DataError(fmt::format("--standardize {}: no float training data for an input of that name", name));
      Standardizer st = fit_standardizer(*t);
      pre.standardize.push_back({name, st.mean, st.std});
    }
  }
  for (const Standardization& st : pre.standardize)
    if (!find_tensor(train.columns, st.input))
      throw DataError(fmt::format("--resume {}: the checkpoint standardizes the input '{}', but --data gives none",
                                  o.resume, st.input));
  pre.apply(train.columns);
  pre.apply(eval.columns);

  Model model = compile(o, dim, batch);
  info = model.info();
  Backend backend = o.backend == "interp" ? Backend::Interpreter : Backend::Jit;
  Session session(model, {backend, o.seed, o.check_numerics, o.threads});
  // Without every input the loss and metrics read, forward() returns neither,
  // and the epochs would report an eval loss of 0: refuse before training.
  if (!o.eval.empty()) {
    std::vector<std::string> missing;
    for (const std::string& name : session.evaluation_inputs())
      if (!find_tensor(eval.columns, name)) missing.push_back(name);
    if (!missing.empty()) {
      std::string names, flags;
      for (const std::string& n : missing) {
        names += fmt::format("{}'{}'", names.empty() ? "" : ", ", n);
        flags += fmt::format("{}--eval {}=PATH", flags.empty() ? "" : " ", n);
      }
      throw DataError(fmt::format("--eval: no data for the input{} {} that the loss and metrics read; add {}",
                                  missing.size() == 1 ? "" : "s", names, flags));
    }
  }
  int64_t steps_per_epoch = train.rows / batch;
  int64_t first_epoch = 1;
  if (!o.resume.empty()) {
    session.restore(ckpt, o.resume);
    if (!same_seed(o.seed, run) || run.batch != batch)
      throw DataError(fmt::format("{}: the checkpoint was written with --seed {} --batch {}; resume with the same",
                                  o.resume, run.seed_text(), run.batch));
    first_epoch = run.epoch + 1;
    // --epochs is the total of the run, not a count to add: a checkpoint at or
    // past it is a finished run. Writing it again with the smaller count would
    // rewind train.epoch, so nothing is trained or written.
    if (first_epoch > o.epochs) {
      std::cout << fmt::format("{}: the run is already complete: the checkpoint is at epoch {} and --epochs is {}; "
                               "nothing was trained or written (raise --epochs to train further)\n",
                               o.resume, first_epoch - 1, o.epochs);
      return 0;
    }
  }
  session.set_preprocessing(pre);  // the checkpoints record it
  if (train.rows % batch != 0 && first_epoch == 1)
    std::cout << fmt::format("note: {} rows in batches of {}: the last {} rows of each (shuffled) epoch are not "
                             "trained on\n", train.rows, batch, train.rows % batch);

  // Evaluation sessions: the full batch size, and one for the remainder.
  std::unique_ptr<Model> rest_model;
  std::unique_ptr<Session> rest_session;
  if (eval.rows % batch != 0) {
    rest_model = std::make_unique<Model>(compile(o, dim, eval.rows % batch));
    rest_session = std::make_unique<Session>(*rest_model, SessionOptions{backend, o.seed});
  }

  // The history the log and the plot show, one entry per epoch (those before
  // the checkpoint's that the log lacks are NaN). Only they need it, and they
  // cover at most kMaxLoggedEpochs (checked above): a checkpoint's epoch does
  // not size memory otherwise.
  bool keep_history = !o.log.empty() || !o.plot.empty();
  History hist = o.log.empty() ? History{} : read_log(o.log, info, first_epoch - 1);
  hist.metrics.resize(info.metrics.size());
  if (keep_history) {
    hist.train_loss.resize(first_epoch - 1, NAN);
    hist.eval_loss.resize(first_epoch - 1, NAN);
    for (auto& m : hist.metrics) m.resize(first_epoch - 1, NAN);
  }

  auto checkpoint = [&](int64_t epoch) {
    NamedTensors ck = session.checkpoint();
    TensorFileMetadata meta = session.preprocessing().metadata();
    add_train_state({epoch, o.seed, true, 0, batch}, ck, meta);
    write_safetensors(o.output, ck, meta);
  };
  bool tty = o.progress && isatty(STDERR_FILENO);
  int64_t total_steps = (o.epochs - first_epoch + 1) * steps_per_epoch, done_steps = 0;
  auto loop_start = Clock::now();
  for (int64_t epoch = first_epoch; epoch <= o.epochs; ++epoch) {
    auto epoch_start = Clock::now();
    std::vector<int64_t> order = shuffle(train.rows, o.seed, epoch);
    double sum = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      NamedTensors b = gather(train, order, step * batch, batch);
      double loss = o.lr ? session.train_step(b, *o.lr) : session.train_step(b);
      if (!std::isfinite(loss)) {
        if (tty) std::cerr << "\n";
        std::cerr << fmt::format("gradc train: error: the loss is {} at epoch {}, step {}; training stopped ({})\n",
                                 loss, epoch, step + 1,
                                 o.save_every && epoch > o.save_every
                                     ? fmt::format("the checkpoint of epoch {} in {} is kept", (epoch - 1) / o.save_every * o.save_every, o.output)
                                     : std::string("no checkpoint was written"));
        return 1;
      }
      sum += loss;
      ++done_steps;
      if (tty && (step % 16 == 0 || step + 1 == steps_per_epoch)) {
        double secs = std::chrono::duration<double>(Clock::now() - loop_start).count();
        double rate = done_steps / std::max(secs, 1e-9);
        int width = 24, filled = static_cast<int>(width * (step + 1) / steps_per_epoch);
        std::cerr << fmt::format("\repoch {}/{} [{}{}] step {}/{}  loss {:.4f}  {:.0f} steps/s  ETA {:.0f}s ", epoch,
                                 o.epochs, std::string(filled, '#'), std::string(width - filled, '.'), step + 1,
                                 steps_per_epoch, sum / (step + 1), rate, (total_steps - done_steps) / rate);
      }
    }
    if (tty) std::cerr << "\r" << std::string(100, ' ') << "\r";
    double train_loss = steps_per_epoch ? sum / static_cast<double>(steps_per_epoch) : NAN;
    EvalResult ev;
    ev.metrics.assign(info.metrics.size(), NAN);
    if (eval.rows > 0) {
      Session full_eval(model, {backend, o.seed});
      full_eval.set_params(session.params());
      if (rest_session) rest_session->set_params(session.params());
      ev = evaluate(eval, batch, full_eval, rest_session.get(), info);
    }
    if (keep_history) {
      hist.train_loss.push_back(train_loss);
      hist.eval_loss.push_back(ev.loss);
    }
    std::string line = fmt::format("epoch {}/{}  train loss {:.6f}", epoch, o.epochs, train_loss);
    if (eval.rows > 0) line += fmt::format("  eval loss {:.6f}", ev.loss);
    for (size_t k = 0; k < info.metrics.size(); ++k) {
      if (keep_history) hist.metrics[k].push_back(ev.metrics[k]);
      if (eval.rows > 0) line += fmt::format("  eval {} {:.4f}", info.metrics[k].name, ev.metrics[k]);
    }
    double secs = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    std::cout << line << fmt::format("  ({:.2f} s, {:.0f} steps/s)\n", secs, steps_per_epoch / std::max(secs, 1e-9))
              << std::flush;
    if (!o.log.empty()) write_log(o.log, hist, info);
    if (!o.plot.empty()) {
      std::vector<PlotSeries> losses{{"train loss", hist.train_loss}, {"eval loss", hist.eval_loss}}, metrics;
      for (size_t k = 0; k < info.metrics.size(); ++k) metrics.push_back({"eval " + info.metrics[k].name, hist.metrics[k]});
      write_training_plot(o.plot, fmt::format("{}: training", info.name), losses, metrics);
    }
    if (o.save_every && epoch % o.save_every == 0) checkpoint(epoch);
  }
  checkpoint(o.epochs);
  double total = std::chrono::duration<double>(Clock::now() - start_time).count();
  std::cout << fmt::format("wrote {} ({} epochs, {} steps, {:.1f} s)\n", o.output, o.epochs, session.step(), total);
  return 0;
}

}  // namespace gradc::driver
