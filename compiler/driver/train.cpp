// `gradc train` (SPEC 3): load the data, then for every epoch shuffle the
// rows (seeded by seed and epoch, so a resumed run sees the same order),
// run train_step on each full batch at the epoch's learning rate
// (--lr-schedule), evaluate on the held-out data, keep the best epoch's
// checkpoint and stop when it no longer improves (--keep-best, --patience),
// report, log, plot, and write checkpoints atomically; never one holding NaN
// or infinity the training produced, and one on SIGINT, SIGTERM or SIGHUP
// that resumes exactly (train_guard.h). Started by mpirun with K ranks, every
// rank trains on its K-th of each batch, the gradients are averaged across
// ranks before each update, and rank 0 alone evaluates, prints and writes
// (distributed.h, docs/distributed.md).
#include "compiler/driver/train.h"

#include "compiler/driver/data.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>

#include "compiler/driver/distributed.h"
#include "compiler/driver/train_guard.h"
#include "compiler/driver/train_state.h"
#include "compiler/support/spelling.h"
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

// A checksum of tensors' names and bytes: equal on ranks that hold the same.
uint64_t params_fingerprint(const NamedTensors& ts) {
  uint64_t h = fingerprint("", 0);
  for (const auto& [name, t] : ts) {
    h = fingerprint(name.data(), name.size(), h);
    h = fingerprint(t.raw(), t.nbytes(), h);
  }
  return h;
}

struct EvalResult {
  double loss = NAN;
  std::vector<double> metrics;
};

// Rank `rank`'s rows of a batch of `rows` rows split across `ranks`: (first
// row, count), the first rows % ranks ranks taking one more (equal shards
// when `ranks` divides `rows`).
std::pair<int64_t, int64_t> shard_of(int64_t rows, int64_t rank, int64_t ranks) {
  int64_t per = rows / ranks, extra = rows % ranks;
  return {rank * per + std::min(rank, extra), per + (rank < extra ? 1 : 0)};
}

// Zero gradients of every param: the share of a rank given no rows.
NamedTensors zero_grads(const Session& s) {
  NamedTensors g;
  for (const auto& [name, t] : s.params()) g.emplace_back("grad." + name, Tensor(t.dtype(), t.shape()));
  return g;
}

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
  std::vector<double> train_loss, eval_loss, lr;
  std::vector<std::vector<double>> metrics;  // per metric, per epoch
};

void write_log(const std::string& path, const History& h, const ModelInfo& info) {
  std::string s = "epoch,train_loss,eval_loss";
  for (const TensorInfo& m : info.metrics) s += ",eval_" + m.name;
  s += ",lr\n";
  for (size_t e = 0; e < h.train_loss.size(); ++e) {
    s += fmt::format("{},{},{}", e + 1, h.train_loss[e], h.eval_loss[e]);
    for (const auto& m : h.metrics) s += fmt::format(",{}", m[e]);
    s += fmt::format(",{}\n", h.lr[e]);
  }
  write_output_file(path, s);
}

// The rows of an earlier log, for a resumed run (epochs up to `epochs`).
History read_log(const std::string& path, const ModelInfo& info, int64_t epochs) {
  History h;
  h.metrics.resize(info.metrics.size());
  // Only a regular file holds earlier rows: a device (--log /dev/full reads
  // zeros without end) or a FIFO (it would wait for a writer) has none.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return h;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return h;
  while (std::getline(in, line) && static_cast<int64_t>(h.train_loss.size()) < epochs) {
    std::vector<double> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(std::strtod(cell.c_str(), nullptr));
    // A log of an earlier version has no lr column.
    size_t n = 3 + info.metrics.size();
    if (cells.size() != n && cells.size() != n + 1) break;
    h.train_loss.push_back(cells[1]);
    h.eval_loss.push_back(cells[2]);
    for (size_t k = 0; k < info.metrics.size(); ++k) h.metrics[k].push_back(cells[3 + k]);
    h.lr.push_back(cells.size() > n ? cells[n] : NAN);
  }
  return h;
}

}  // namespace

// (train.h)
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

namespace {

// A command line that does not fit the model (exit status 2, as main's usage errors).
int usage_error(const std::string& message) {
  std::cerr << fmt::format("gradc train: error: {}\nrun 'gradc train --help' for usage\n", message);
  return 2;
}

// Where --keep-best writes: CKPT's name with ".best" before its extension
// (c.safetensors -> c.best.safetensors), or after a name without one.
std::string best_checkpoint_path(const std::string& output) {
  size_t slash = output.rfind('/');
  size_t name = slash == std::string::npos ? 0 : slash + 1;
  size_t dot = output.rfind('.');
  if (dot == std::string::npos || dot <= name) return output + ".best";
  return output.substr(0, dot) + ".best" + output.substr(dot);
}

// The learning rate of the run: a base rate and its schedule.
struct Rate {
  double base = 0;
  LrSchedule schedule;
  double at(int64_t epoch) const { return base * schedule.factor(epoch); }
};

// The command line's rate and schedule; where it gives none, those the
// checkpoint of --resume recorded (so the resumed run continues its run),
// else the model file's rate, constant. A resumed run that changes what the
// checkpoint recorded is told so in `notes`: it is allowed (a lower rate for
// the rest of a run is common), but that run will not end as the
// uninterrupted one would.
Rate learning_rate(const Options& o, const ModelInfo& info, const TrainState* run, int64_t first_epoch,
                   std::vector<std::string>& notes) {
  Rate r;
  r.base = o.lr ? *o.lr : run && run->lr ? *run->lr : info.lr;
  r.schedule = o.lr_schedule ? o.lr_schedule->resolved(o.epochs) : run && run->schedule ? *run->schedule : LrSchedule{};
  if (!run) return r;
  if (o.lr && run->lr && *o.lr != *run->lr)
    notes.push_back(fmt::format("--resume {}: from epoch {} on, --lr {} replaces the rate {} the checkpoint's run had",
                                o.resume, first_epoch, *o.lr, *run->lr));
  if (o.lr_schedule && run->schedule && r.schedule.text() != run->schedule->text())
    notes.push_back(fmt::format("--resume {}: from epoch {} on, --lr-schedule {} replaces the checkpoint's {}", o.resume,
                                first_epoch, r.schedule.text(), run->schedule->text()));
  if (!o.lr_schedule && r.schedule.cosine && r.schedule.cosine_epochs < o.epochs)
    throw DataError(fmt::format("--resume {}: the run's --lr-schedule {} brings the learning rate to 0 after epoch {}, "
                                "but --epochs is {}; give --lr-schedule to train past it",
                                o.resume, r.schedule.text(), r.schedule.cosine_epochs, o.epochs));
  return r;
}

// --keep-best: which value is watched, the best so far and its epoch.
struct Best {
  BestMetric metric;
  size_t index = 0;  // of the metric in ModelInfo::metrics (not for loss)
  std::string path;  // where the best epoch's checkpoint goes
  double value = 0;
  int64_t epoch = 0;  // 0: no epoch had a finite value yet
  double of(const EvalResult& ev) const { return metric.name == "loss" ? ev.loss : ev.metrics[index]; }
  // Takes the value of `epoch`'s evaluation; true when it is the best so far.
  bool update(double v, int64_t e) {
    bool better = std::isfinite(v) && (epoch == 0 || (metric.higher_is_better ? v > value : v < value));
    if (better) value = v, epoch = e;
    return better;
  }
  std::string what() const { return fmt::format("eval {}", metric.name); }
};

}  // namespace

int cmd_train(const Options& given) {
  auto start_time = Clock::now();
  Distributed& ranks = Distributed::world();
  bool lead = ranks.rank() == 0;  // evaluates, prints and writes files
  Options o = given;
  if (!lead) o.quiet = true, o.progress = false;
  if ((!o.log.empty() || !o.plot.empty()) && o.epochs > kMaxLoggedEpochs)
    throw DataError(fmt::format("--epochs {} with {}: the log and the plot cover at most {} epochs", o.epochs,
                                o.log.empty() ? "--plot" : "--log", kMaxLoggedEpochs));
  if (lead) check_writable(o.output, "-o");
  std::optional<Best> best;
  if (o.keep_best) {
    // The best checkpoint goes beside CKPT, which must then be a file.
    if (resolve_output(o.output).in_place)
      throw DataError(fmt::format("--keep-best writes the best checkpoint beside CKPT, but -o {} is a device or FIFO; "
                                  "give -o a file",
                                  o.output));
    best = Best{*o.keep_best, 0, best_checkpoint_path(o.output)};
    if (lead) check_writable(best->path, "--keep-best");
  }
  if (lead && !o.log.empty()) check_writable(o.log, "--log");
  if (lead && !o.plot.empty()) check_writable(o.plot, "--plot");
  // A first compile for the model's interface; the batch size is bound below.
  CompileOptions probe_opts;
  probe_opts.dims = o.dims;
  Model probe = Model::compile_file(o.model, probe_opts);
  if (!probe.diagnostics().empty()) std::cerr << render_all(probe.diagnostics());  // errors or warnings
  if (!probe.ok()) return probe.options_error() ? 2 : 1;
  ModelInfo info = probe.info();
  if (best && best->metric.name != "loss") {
    std::vector<std::string_view> names{"loss"};
    for (const TensorInfo& m : info.metrics) names.push_back(m.name);
    auto it = std::find(names.begin() + 1, names.end(), best->metric.name);
    if (it == names.end()) {
      std::string_view near = closest_name(best->metric.name, names);
      std::string known;
      for (std::string_view n : names) known += fmt::format("{}{}", known.empty() ? "" : ", ", n);
      return usage_error(fmt::format("--keep-best {}: the model has no metric '{}'{}; it can watch {}",
                                     best->metric.name, best->metric.name,
                                     near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near), known));
    }
    best->index = static_cast<size_t>(it - names.begin() - 1);
  }
  Dataset train = load(o.data, info, "--data");
  Dataset eval = load(o.eval, info, "--eval");
  if (train.rows == 0) throw DataError("--data: no training data given");
  std::string dim = batch_dim(info, train);
  // A dynamic batch dim (SPEC 2.2) takes any batch: --batch, else 32 rows
  // (Keras's default), and the last, partial batch of an epoch is trained too
  // (data-parallel: in shards of unequal sizes, their gradients weighted by
  // their rows).
  bool dynamic = std::find(info.dynamic_dims.begin(), info.dynamic_dims.end(), dim) != info.dynamic_dims.end();
  int64_t batch = o.batch.value_or(0);
  if (!o.batch)
    for (const auto& [k, v] : info.dims)
      if (k == dim) batch = v;
  if (!o.batch && dynamic) {
    batch = std::min<int64_t>(kDefaultDynamicBatch, train.rows);
    if (!o.quiet)
      std::cout << fmt::format("note: the batch dim {} is dynamic: batches of {} rows (--batch N to choose)\n", dim,
                               batch);
  }
  // Which value binds the batch dim, and why, whenever it could surprise.
  std::string set_value;
  for (const auto& [k, v] : o.dims)
    if (k == dim) set_value = fmt::format("{}", v);
  if (o.batch && !set_value.empty() && set_value != fmt::format("{}", *o.batch) && !o.quiet)
    std::cout << fmt::format("note: batches of {} rows: --batch {} binds the batch dim {} (it overrides --set {}={})\n",
                             batch, batch, dim, dim, set_value);
  if (batch > train.rows) {
    std::string source = o.batch ? fmt::format("--batch {}", batch)
                         : !set_value.empty() ? fmt::format("--set {}={}", dim, batch)
                                              : fmt::format("the batch dim {} is {} (its declared size), which", dim, batch);
    throw DataError(fmt::format("{} is larger than the {} training rows; use --batch {} or less", source, train.rows,
                                train.rows));
  }
  // Data-parallel: each rank computes the gradients of `shard` rows of every batch.
  if (batch % ranks.size() != 0)
    throw DataError(fmt::format("batches of {} rows do not split evenly across the {} ranks of this mpirun; give "
                                "--batch a multiple of {}",
                                batch, ranks.size(), ranks.size()));
  int64_t shard = batch / ranks.size();
  // The split step (grad on every rank, then the averaged update) does not
  // update buffers: refuse rather than leave batch_norm's running statistics
  // where they started.
  if (ranks.many() && (info.optimizer.rfind("genetic(", 0) == 0 || info.optimizer.rfind("es(", 0) == 0))
    throw DataError(fmt::format("the optimizer {} computes no gradient to average across ranks, which is how "
                                "data-parallel training works; train it in one process",
                                info.optimizer.substr(0, info.optimizer.find('('))));
  if (ranks.many() && !info.buffers.empty())
    throw DataError(fmt::format("the model has buffers ('{}'), which data-parallel training does not update yet; "
                                "train it in one process",
                                info.buffers.front().name));

  // Standardization: fit on the training data, or, when resuming, the
  // statistics the checkpoint stored (so the resumed run sees the same numbers
  // and --standardize may be left out); a different set of inputs is an error.
  NamedTensors ckpt;
  Preprocessing pre;
  TrainState run;  // what the checkpoint of --resume recorded
  for (size_t i = 0; i < o.standardize.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (o.standardize[i] == o.standardize[j])
        throw DataError(fmt::format("--standardize {} is given twice", o.standardize[i]));
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

  auto compile_start = Clock::now();
  Model model = dynamic ? compile_dynamic(o) : compile_for_rows(o, dim, shard);
  info = model.info();
  // With several ranks, rank 0 evaluates with whole batches: the model at `batch` rows.
  std::optional<Model> batch_model;
  if (ranks.many() && lead && !dynamic) batch_model.emplace(compile_for_rows(o, dim, batch));
  const Model& eval_model = batch_model ? *batch_model : model;
  Backend backend = o.backend == "interp" ? Backend::Interpreter : Backend::Jit;
  Session session(model, {backend, o.seed, o.check_numerics, o.threads});
  // Native code for every call the loop makes, before it starts: the first
  // epoch's throughput then measures training, and compile time has its own line.
  if (dynamic) {
    // The step for a whole batch (or shard) and for the epoch's last, partial one.
    std::vector<int64_t> first(static_cast<size_t>(train.rows));
    std::iota(first.begin(), first.end(), 0);
    Entry entry = ranks.many() ? Entry::Grad : Entry::TrainStep;
    session.prepare(entry, gather(train, first, 0, shard));
    if (int64_t rest = shard_of(train.rows % batch, ranks.rank(), ranks.size()).second)
      session.prepare(entry, gather(train, first, 0, rest));
  } else {
    session.prepare(ranks.many() ? Entry::Grad : Entry::TrainStep);
  }
  Session full_eval(eval_model, {backend, o.seed, o.check_numerics});  // evaluates each epoch's params
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
  int64_t steps_per_epoch = dynamic ? (train.rows + batch - 1) / batch : train.rows / batch;
  int64_t first_epoch = 1;
  // A run stopped by a signal between two steps resumes within its epoch:
  // the steps of first_epoch already taken, and the sum of their losses (so
  // the epoch reports the same train loss as an uninterrupted run).
  int64_t first_step = 0;
  double first_sum = 0;
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
      if (lead)
        std::cout << fmt::format("{}: the run is already complete: the checkpoint is at epoch {} and --epochs is {}; "
                                 "nothing was trained or written (raise --epochs to train further)\n",
                                 o.resume, first_epoch - 1, o.epochs);
      return 0;
    }
    const Tensor* es = find_tensor(ckpt, "train.epoch_step");
    const Tensor* ls = find_tensor(ckpt, "train.loss_sum");
    if (es || ls) {
      double k = es && es->numel() == 1 ? es->get(0) : -1;
      double sum = ls && ls->numel() == 1 ? ls->get(0) : NAN;
      if (!(k >= 0 && k < static_cast<double>(steps_per_epoch) && k == std::floor(k)) || !std::isfinite(sum))
        throw DataError(fmt::format("{}: a checkpoint written between two steps needs the scalars train.epoch_step, "
                                    "from 0 to {} (one less than the steps of an epoch of this data and --batch), "
                                    "and a finite train.loss_sum",
                                    o.resume, steps_per_epoch - 1));
      first_step = static_cast<int64_t>(k);
      first_sum = sum;
    }
  }
  std::vector<std::string> notes;  // printed with the other notes, below
  const TrainState* resumed = o.resume.empty() ? nullptr : &run;
  Rate rate = learning_rate(o, info, resumed, first_epoch, notes);
  // The best value so far continues from the checkpoint when it watched the
  // same; a run that --patience stopped is finished, as one at --epochs is.
  if (best && resumed && run.keep_best) {
    if (run.keep_best->text() == best->metric.text()) {
      best->value = run.best;
      best->epoch = run.best_epoch;
      if (o.patience && run.epoch - best->epoch >= o.patience) {
        if (lead)
          std::cout << fmt::format("{}: the run stopped early: its {} has not improved since epoch {} and --patience "
                                   "is {}; nothing was trained or written (raise --patience to train further)\n",
                                   o.resume, best->what(), best->epoch, o.patience);
        return 0;
      }
    } else {
      notes.push_back(fmt::format("--resume {}: the checkpoint's run kept the best {}; this one keeps the best {} "
                                  "from epoch {} on",
                                  o.resume, run.keep_best->text(), best->metric.text(), first_epoch));
    }
  }
  session.set_preprocessing(pre);  // the checkpoints record it
  // Evaluation sessions: the full batch size, and one for the remainder.
  std::unique_ptr<Model> rest_model;
  std::unique_ptr<Session> rest_session;
  if (lead && eval.rows % batch != 0 && !dynamic) {
    rest_model = std::make_unique<Model>(compile_for_rows(o, dim, eval.rows % batch));
    rest_session = std::make_unique<Session>(*rest_model, SessionOptions{backend, o.seed, o.check_numerics});
    rest_session->prepare(Entry::Forward);
  }
  // One evaluation with the initial params compiles what it runs (the
  // evaluate entry of both specializations); its results are not used.
  if (lead && eval.rows > 0) {
    full_eval.set_params(session.params());
    full_eval.set_buffers(session.buffers());
    if (rest_session) rest_session->set_params(session.params()), rest_session->set_buffers(session.buffers());
    try {
      evaluate(eval, batch, full_eval, dynamic ? &full_eval : rest_session.get(), info);
    } catch (const DataError&) {
      // Reported, with its epoch, by the evaluation after the first epoch.
    }
  }
  double compile_secs = std::chrono::duration<double>(Clock::now() - compile_start).count();

  // The history the log and the plot show, one entry per epoch (those before
  // the checkpoint's that the log lacks are NaN). Only they need it, and they
  // cover at most kMaxLoggedEpochs (checked above): a checkpoint's epoch does
  // not size memory otherwise.
  bool keep_history = !o.log.empty() || !o.plot.empty();
  History hist = o.log.empty() || first_epoch == 1 ? History{} : read_log(o.log, info, first_epoch - 1);
  hist.metrics.resize(info.metrics.size());
  if (keep_history) {
    hist.train_loss.resize(first_epoch - 1, NAN);
    hist.eval_loss.resize(first_epoch - 1, NAN);
    hist.lr.resize(first_epoch - 1, NAN);
    for (auto& m : hist.metrics) m.resize(first_epoch - 1, NAN);
  }

  // The ranks must run the same steps on the same params: a rank given other
  // data, options or checkpoint would otherwise wait in a collective that the
  // others never reach.
  if (ranks.many()) {
    int64_t shape[] = {train.rows, batch, o.epochs, first_epoch, first_step, static_cast<int64_t>(o.seed)};
    if (!ranks.same_everywhere(fingerprint(shape, sizeof shape, params_fingerprint(session.checkpoint()))))
      throw DataError(fmt::format("the {} ranks were not given the same run: each must have the same --data rows, "
                                  "--batch, --epochs, --seed and --resume checkpoint (rank {} has {} rows, "
                                  "batch {}, epochs {} to {})",
                                  ranks.size(), ranks.rank(), train.rows, batch, first_epoch, o.epochs));
  }
  std::optional<GradientExchange> exchange;
  if (ranks.many()) exchange.emplace(ranks, session.params());

  // What the run starts from; a checkpoint may hold no other non-finite value.
  FiniteGuard finite(session.checkpoint());
  // From here a signal ends the run with a checkpoint, and a closed stdout
  // ends the printing only.
  StopSignals signals;
  Progress out;
  if (!o.quiet)
    out.print(fmt::format("compiled {} in {:.2f} s ({}{})\n", info.name, compile_secs,
                          backend != Backend::Jit ? "the interpreter's plans" : ranks.many() ? "grad" : "train_step",
                          eval.rows > 0 && backend == Backend::Jit ? " and forward" : ""));
  if (train.rows % batch != 0 && first_epoch == 1 && !o.quiet && !dynamic)
    out.print(fmt::format("note: {} rows in batches of {}: the last {} rows of each (shuffled) epoch are not "
                          "trained on\n", train.rows, batch, train.rows % batch));
  if (!o.quiet) {
    for (const std::string& note : notes) out.print("note: " + note + "\n");
    if (best)
      out.print(fmt::format("note: keeping the checkpoint of the epoch with the best {} ({} is better) in {}\n",
                            best->what(), best->metric.higher_is_better ? "higher" : "lower", best->path));
  }

  int64_t last_saved = -1;  // the epoch of the last checkpoint this run wrote
  struct stat out_st {};
  bool output_existed = stat(o.output.c_str(), &out_st) == 0 && S_ISREG(out_st.st_mode);
  // What the user has when the run stops without writing a checkpoint.
  auto kept = [&] {
    if (last_saved >= 0) return fmt::format("the checkpoint of epoch {} in {} is kept", last_saved, o.output);
    return output_existed ? fmt::format("{} is as it was", o.output) : std::string("no checkpoint was written");
  };
  // Writes the checkpoint of `epoch` whole epochs and `epoch_step` steps of
  // the next (a run stopped between two steps) to `path`, unless it holds a
  // non-finite value the training produced: then nothing is written (the file
  // keeps the last good checkpoint), the error is reported and the result is
  // false.
  auto save = [&](int64_t epoch, int64_t epoch_step, double loss_sum, const std::string& path) {
    if (!lead) return true;  // every rank holds the same params; one writes them
    NamedTensors ck = session.checkpoint();
    if (std::optional<std::string> bad = finite.check(ck)) {
      std::cerr << fmt::format("gradc train: error: after epoch {}, step {} {}, which no checkpoint may hold: "
                               "training stopped ({})\n",
                               epoch_step ? epoch + 1 : epoch, epoch_step ? epoch_step : steps_per_epoch, *bad, kept());
      if (!o.check_numerics)
        std::cerr << "gradc train: note: --check-numerics stops at the step and names the op that first produces "
                     "a non-finite value\n";
      return false;
    }
    TensorFileMetadata meta = session.preprocessing().metadata();
    TrainState state;
    state.epoch = epoch;
    state.seed = o.seed;
    state.batch = batch;
    state.lr = rate.base;
    state.schedule = rate.schedule;
    if (best) {
      state.keep_best = best->metric;
      state.best = best->value;
      state.best_epoch = best->epoch;
    }
    add_train_state(state, ck, meta);
    if (epoch_step) {
      Tensor k(DType::I32, {}), sum(DType::F64, {});
      k.set(0, static_cast<double>(epoch_step));
      sum.set(0, loss_sum);
      ck.emplace_back("train.epoch_step", std::move(k));
      ck.emplace_back("train.loss_sum", std::move(sum));
    }
    write_safetensors(path, ck, meta);
    if (path == o.output) last_saved = epoch;
    return true;
  };
  bool tty = o.progress && isatty(STDERR_FILENO);
  // A signal, seen before step `step` (0-based) of `epoch`: the checkpoint
  // of the steps taken, where it is, and how to go on.
  auto interrupted = [&](int64_t epoch, int64_t step, double sum) {
    // With several ranks, a signal to any of them stops all at the same step.
    int sig = signals.received() ? signals.received() : SIGTERM;
    if (!lead) return ranks.end_together(128 + sig);  // once rank 0 has written the checkpoint
    std::string where = step ? fmt::format("epoch {}, step {} of {}", epoch, step, steps_per_epoch)
                             : fmt::format("epoch {}", epoch - 1);
    if (tty && step) std::cerr << "\n";
    std::cerr << fmt::format("gradc train: {}: stopping after {}; writing the checkpoint (a second signal stops "
                             "gradc at once)\n", signal_name(sig), where);
    if (!(step == 0 && last_saved == epoch - 1) && !save(epoch - 1, step, sum, o.output)) return 1;
    std::cerr << fmt::format("gradc train: wrote {} (after {}); to resume the run:\n  {}\n", o.output, where,
                             resume_command(o.argv, o.output));
    return ranks.end_together(128 + sig);
  };
  int64_t total_steps = (o.epochs - first_epoch + 1) * steps_per_epoch - first_step, done_steps = 0;
  int64_t last_epoch = o.epochs;  // less when --patience stops the run
  auto loop_start = Clock::now();
  for (int64_t epoch = first_epoch; epoch <= o.epochs; ++epoch) {
    auto epoch_start = Clock::now();
    std::vector<int64_t> order = shuffle(train.rows, o.seed, epoch);
    int64_t first = epoch == first_epoch ? first_step : 0;
    double sum = epoch == first_epoch ? first_sum : 0;
    double lr = rate.at(epoch);
    for (int64_t step = first; step < steps_per_epoch; ++step) {
      // (With several ranks the step's exchange carries the signal, so that all stop at one step.)
      if (!exchange && signals.received()) return interrupted(epoch, step, sum);
      double loss = 0;
      int64_t rows = std::min(batch, train.rows - step * batch);  // less in a last, partial batch
      if (exchange) {
        // This rank's rows of the batch (`shard` of a whole one; of a partial
        // one, shards that differ by a row at most, none for a rank past its
        // rows); the mean gradient of all ranks, each weighted by its rows
        // (1 for equal shards): the whole batch's for a loss that averages
        // over its rows.
        auto [at, n] = shard_of(rows, ranks.rank(), ranks.size());
        NamedTensors g = n ? session.grad(gather(train, order, step * batch + at, n)) : zero_grads(session);
        double weight = static_cast<double>(n) * static_cast<double>(ranks.size()) / static_cast<double>(rows);
        GradientExchange::Result r = exchange->average(g, n ? find_tensor(g, "loss")->get(0) : 0.0,
                                                       signals.received() != 0, weight);
        if (r.stop) return interrupted(epoch, step, sum);
        session.apply_gradients(g, lr);
        loss = r.loss;
      } else {
        loss = session.train_step(gather(train, order, step * batch, rows), lr);
      }
      if (!std::isfinite(loss)) {
        if (tty) std::cerr << "\n";
        std::cerr << fmt::format("gradc train: error: the loss is {} at epoch {}, step {}; training stopped ({})\n",
                                 loss, epoch, step + 1, kept());
        return 1;
      }
      // A partial batch's loss (a mean over its rows) counts for its rows:
      // the epoch's train loss is then the mean over the rows trained.
      sum += rows == batch ? loss : loss * static_cast<double>(rows) / static_cast<double>(batch);
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
    // Every epoch, a check that the ranks' params are still the same bits
    // (one small MPI_Allreduce: microseconds against an epoch's steps).
    if (ranks.many() && !ranks.same_everywhere(params_fingerprint(session.params())))
      throw DataError(fmt::format("after epoch {} the ranks' params differ: the reduction gave the ranks different "
                                  "sums (see docs/distributed.md, determinism)",
                                  epoch));
    double batches = dynamic ? static_cast<double>(train.rows) / static_cast<double>(batch)
                                     : static_cast<double>(steps_per_epoch);  // whole batches' worth of rows
    double train_loss = steps_per_epoch ? sum / batches : NAN;
    EvalResult ev;
    ev.metrics.assign(info.metrics.size(), NAN);
    if (lead && eval.rows > 0) {
      full_eval.set_params(session.params());
      full_eval.set_buffers(session.buffers());
      if (rest_session) rest_session->set_params(session.params()), rest_session->set_buffers(session.buffers());
      try {
        ev = evaluate(eval, batch, full_eval, dynamic ? &full_eval : rest_session.get(), info);
      } catch (const DataError& e) {
        if (!o.check_numerics) throw;
        // A ModelError's text is the diagnostic at its model line.
        std::cerr << (dynamic_cast<const ModelError*>(&e) ? std::string(e.what())
                                                          : fmt::format("gradc train: error: {}\n", e.what()));
        std::cerr << fmt::format("gradc train: note: in the evaluation after epoch {}; training stopped ({})\n",
                                 epoch, kept());
        return 1;
      }
      // --check-numerics holds for what the eval pass reports too.
      bool finite_eval = std::isfinite(ev.loss);
      for (double m : ev.metrics) finite_eval = finite_eval && std::isfinite(m);
      if (o.check_numerics && !finite_eval) {
        std::cerr << fmt::format("gradc train: error: check-numerics: the evaluation after epoch {} gives a "
                                 "non-finite eval loss or metric (loss {}); training stopped ({})\n",
                                 epoch, ev.loss, kept());
        return 1;
      }
    }
    // Rank 0's evaluation, on every rank: --keep-best and --patience decide alike.
    if (ranks.many() && eval.rows > 0) {
      std::vector<double> values{ev.loss};
      values.insert(values.end(), ev.metrics.begin(), ev.metrics.end());
      ranks.broadcast(values.data(), static_cast<int64_t>(values.size()));
      ev.loss = values[0];
      std::copy(values.begin() + 1, values.end(), ev.metrics.begin());
    }
    if (keep_history) {
      hist.train_loss.push_back(train_loss);
      hist.eval_loss.push_back(ev.loss);
      hist.lr.push_back(lr);
    }
    // Losses with 6 significant digits: a loss of 3e-7 does not print as 0.000000.
    std::string line = fmt::format("epoch {}/{}  train loss {:.6g}", epoch, o.epochs, train_loss);
    if (eval.rows > 0) line += fmt::format("  eval loss {:.6g}", ev.loss);
    for (size_t k = 0; k < info.metrics.size(); ++k) {
      if (keep_history) hist.metrics[k].push_back(ev.metrics[k]);
      if (eval.rows > 0) line += fmt::format("  eval {} {:.4f}", info.metrics[k].name, ev.metrics[k]);
    }
    if (!rate.schedule.constant()) line += fmt::format("  lr {:.6g}", lr);
    // --keep-best: the best epoch's checkpoint now; --patience: whether to stop here.
    bool improved = best && best->update(best->of(ev), epoch);
    bool stop_early = best && o.patience && epoch < o.epochs && epoch - best->epoch >= o.patience;
    if (improved) line += "  new best";
    double secs = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    if (!o.quiet && (epoch % o.log_every == 0 || epoch == o.epochs || stop_early))
      out.print(line + fmt::format("  ({:.2f} s, {:.0f} steps/s)\n", secs, steps_per_epoch / std::max(secs, 1e-9)));
    // The checkpoints first, then the log and plot: a side output that fails
    // must not cost the training.
    if (improved && !save(epoch, 0, 0, best->path)) return 1;
    if ((epoch == o.epochs || stop_early || (o.save_every && epoch % o.save_every == 0)) &&
        !save(epoch, 0, 0, o.output))
      return 1;
    std::vector<std::string> failed;
    auto side = [&](const char* flag, const std::string& path, auto write) {
      try {
        write();
      } catch (const DataError& e) {
        std::string why = e.what();
        if (why.starts_with(path + ": ")) why = why.substr(path.size() + 2);
        failed.push_back(fmt::format("{} {}: {}", flag, path, why));
      }
    };
    if (lead && !o.log.empty()) side("--log", o.log, [&] { write_log(o.log, hist, info); });
    if (lead && !o.plot.empty())
      side("--plot", o.plot, [&] {
        std::vector<PlotSeries> losses{{"train loss", hist.train_loss}, {"eval loss", hist.eval_loss}}, metrics;
        for (size_t k = 0; k < info.metrics.size(); ++k)
          metrics.push_back({"eval " + info.metrics[k].name, hist.metrics[k]});
        write_training_plot(o.plot, fmt::format("{}: training", info.name), losses, metrics);
      });
    if (!failed.empty()) {
      if (last_saved != epoch && !save(epoch, 0, 0, o.output)) return 1;
      for (const std::string& f : failed) std::cerr << "gradc train: error: " << f << "\n";
      if (epoch == o.epochs || stop_early)
        std::cerr << fmt::format("gradc train: the training is complete: {} holds its checkpoint\n", o.output);
      else
        std::cerr << fmt::format("gradc train: training stopped after epoch {}; {} holds its checkpoint; to resume "
                                 "once the file can be written:\n  {}\n",
                                 epoch, o.output, resume_command(o.argv, o.output));
      return 1;
    }
    if (stop_early) {
      if (!o.quiet)
        out.print(fmt::format("stopping early: the {} has not improved for {} epochs (--patience {})\n", best->what(),
                              epoch - best->epoch, o.patience));
      last_epoch = epoch;
      break;
    }
  }
  double total = std::chrono::duration<double>(Clock::now() - start_time).count();
  std::string epochs = last_epoch == o.epochs ? fmt::format("{} epochs", o.epochs)
                                              : fmt::format("{} of {} epochs, stopped early", last_epoch, o.epochs);
  std::string kept_best;
  if (best)
    kept_best = best->epoch ? fmt::format("; best {} {:.6g} at epoch {}: {}", best->what(), best->value, best->epoch,
                                          best->path)
                            : fmt::format("; no epoch had a finite {}, so {} was not written", best->what(), best->path);
  if (lead)
    out.print(fmt::format("wrote {} ({}, {} steps, {:.1f} s){}{}\n", o.output, epochs, session.step(), total, kept_best,
                          ranks.many() ? fmt::format("; {} ranks", ranks.size()) : ""));
  if (int sig = signals.received()) {
    // It came during the last epoch's evaluation or writing: nothing is left to do.
    std::cerr << fmt::format("gradc train: {}: received after the last step; the run is complete and {} holds its "
                             "checkpoint\n", signal_name(sig), o.output);
    return 128 + sig;
  }
  return 0;
}

}  // namespace gradc::driver
