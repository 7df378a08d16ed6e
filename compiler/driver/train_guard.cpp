// Signals, a closed standard output and non-finite state during `gradc
// train` (train_guard.h says why each matters).
#include "compiler/driver/train_guard.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "compiler/driver/options.h"

namespace gradc::driver {
namespace {

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kCount = 3;

// Shared with the handler: only lock-free atomics are safe to touch there.
std::atomic<int> g_received{0};
std::atomic<bool> g_caught[kCount];
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

struct sigaction g_old[kCount];
struct sigaction g_old_pipe;

// Runs in signal context: record the first signal, then hand every stop
// signal we caught back to its default action (sigaction is
// async-signal-safe), so that the next one ends the process at once even
// while the checkpoint is being written. The writer is atomic, so that
// leaves the previous checkpoint whole.
extern "C" void on_stop_signal(int signo) {
  int saved_errno = errno;
  int none = 0;
  g_received.compare_exchange_strong(none, signo);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int i = 0; i < kCount; ++i)
    if (g_caught[i].load()) sigaction(kStopSignals[i], &dfl, nullptr);
  errno = saved_errno;
}

bool ignored(const struct sigaction& sa) { return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN; }

// A word as a POSIX shell reads it back: unchanged when it holds only
// characters no shell treats specially, else in single quotes.
std::string shell_quote(const std::string& word) {
  bool plain = !word.empty();
  for (char c : word)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_@%+=:,./-").find(c) != std::string_view::npos))
      plain = false;
  if (plain) return word;
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Whether the option `name` (as written, without "=VALUE") takes a value.
bool takes_value(std::string_view name) {
  if (name == "--output") name = "-o";
  for (const OptionRow& r : option_table())
    if (name == r.name) return r.arg != nullptr;
  return false;
}

}  // namespace

StopSignals::StopSignals() {
  g_received.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : kStopSignals) sigaddset(&sa.sa_mask, s);  // one handler at a time
  sa.sa_flags = SA_RESTART;  // a write in progress goes on rather than failing with EINTR
  for (int i = 0; i < kCount; ++i) {
    sigaction(kStopSignals[i], nullptr, &g_old[i]);
    g_caught[i].store(!ignored(g_old[i]));
  }
  for (int i = 0; i < kCount; ++i)
    if (g_caught[i].load()) sigaction(kStopSignals[i], &sa, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, &g_old_pipe);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < kCount; ++i)
    if (g_caught[i].exchange(false)) sigaction(kStopSignals[i], &g_old[i], nullptr);
  sigaction(SIGPIPE, &g_old_pipe, nullptr);
}

int StopSignals::received() const { return g_received.load(); }

std::string signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return fmt::format("signal {}", signo);
  }
}

void Progress::print(std::string_view text) {
  if (closed_) return;
  errno = 0;
  std::cout << text << std::flush;
  if (std::cout.good() || errno != EPIPE) return;
  // The reader is gone: point stdout at /dev/null, so that whatever the C
  // library still buffers, and the driver's final flush, succeed there.
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    close(fd);
  }
  std::clearerr(stdout);
  std::cout.clear();
  closed_ = true;
}

namespace {

// Calls f(index) for each non-finite element of a float tensor, until f returns true.
template <class F> void each_non_finite(const Tensor& t, F f) {
  if (t.dtype() == DType::F32) {
    const float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i]) && f(i)) return;
  } else if (t.dtype() == DType::F64) {
    const double* p = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i]) && f(i)) return;
  }
}

// The genetic optimizer's record of its members' losses: an infinite loss
// ranks a member last and is not a value any step starts from.
bool exempt(const std::string& name) { return name == "opt.fitness"; }

}  // namespace

FiniteGuard::FiniteGuard(const NamedTensors& start) {
  for (const auto& [name, t] : start) {
    std::vector<bool> mask;
    each_non_finite(t, [&](int64_t i) {
      if (mask.empty()) mask.resize(static_cast<size_t>(t.numel()));
      mask[static_cast<size_t>(i)] = true;
      return false;
    });
    if (!mask.empty()) allowed_.emplace_back(name, std::move(mask));
  }
}

std::optional<std::string> FiniteGuard::check(const NamedTensors& tensors) const {
  for (const auto& [name, t] : tensors) {
    if (exempt(name)) continue;
    const std::vector<bool>* mask = nullptr;
    for (const auto& [n, m] : allowed_)
      if (n == name && m.size() == static_cast<size_t>(t.numel())) mask = &m;
    std::optional<std::string> found;
    each_non_finite(t, [&](int64_t i) {
      if (mask && (*mask)[static_cast<size_t>(i)]) return false;
      found = fmt::format("the tensor '{}' holds {} (element {} of {})", name, t.get(i), i, t.type_string());
      return true;
    });
    if (found) return found;
  }
  return std::nullopt;
}

std::string resume_command(const std::vector<std::string>& argv, const std::string& checkpoint) {
  std::string cmd;
  auto add = [&](const std::string& word) { cmd += (cmd.empty() ? "" : " ") + shell_quote(word); };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    bool option = i >= 2 && a.size() > 1 && a[0] == '-';
    bool inline_value = option && a.starts_with("--") && a.find('=') != std::string::npos;
    std::string name = inline_value ? a.substr(0, a.find('=')) : a;
    bool next_is_value = option && !inline_value && takes_value(name) && i + 1 < argv.size();
    if (option && name == "--resume") {
      i += next_is_value;
      continue;
    }
    add(a);
    if (next_is_value) add(argv[++i]);
  }
  add("--resume");
  add(checkpoint);
  return cmd;
}

}  // namespace gradc::driver
