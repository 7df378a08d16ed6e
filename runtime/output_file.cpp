// The one routine that writes output files (see output_file.h): atomic
// replacement for regular files, in-place writes for devices and FIFOs,
// symbolic links followed, and stale temporary files of killed writers
// cleaned up.
#include "runtime/output_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <system_error>

#include "runtime/tensor_io.h"

namespace gradc {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw DataError(path + ": " + msg); }

// strerror, thread-safely, lowercased to fit a diagnostic.
std::string errno_text(int err) {
  std::string s = std::error_code(err, std::generic_category()).message();
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string dir_of(const std::string& p) {
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string base_of(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// The prefix of every temporary file written for the file name `base`.
std::string temp_prefix(const std::string& base) { return "." + base.substr(0, 100) + ".tmp-"; }

void write_all(int fd, std::string_view bytes, const std::string& path) {
  for (size_t done = 0; done < bytes.size();) {
    ssize_t k = ::write(fd, bytes.data() + done, std::min<size_t>(bytes.size() - done, size_t{1} << 30));
    if (k < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot write (write): " + errno_text(errno));
    }
    done += static_cast<size_t>(k);
  }
}

// The descriptor of this process that `path` names (/dev/stdout,
// /dev/fd/N, /proc/self/fd/N), or -1.
int own_descriptor(const std::string& path) {
  if (path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (std::string prefix : {std::string("/dev/fd/"), std::string("/proc/self/fd/"), fmt::format("/proc/{}/fd/", ::getpid())}) {
    if (!path.starts_with(prefix) || path.size() == prefix.size() || path.size() > prefix.size() + 6) continue;
    std::string n = path.substr(prefix.size());
    if (std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::stoi(n);
  }
  return -1;
}

// A device, a FIFO or a /proc file: opened and written where it is. A FIFO
// waits for its reader, as `cat > fifo` does. One of this process's own
// descriptors is written directly, at its offset, after what stdio holds:
// reopening `> file` through /proc would start over at offset 0, and the
// program's later output would overwrite the file's bytes.
void write_in_place(const std::string& path, std::string_view bytes) {
  if (int own = own_descriptor(path); own >= 0) {
    std::fflush(nullptr);
    write_all(own, bytes, path);
    return;
  }
  int fd;
  do fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) fail(path, "cannot write: " + errno_text(errno));
  try {
    write_all(fd, bytes, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) fail(path, "cannot write (close): " + errno_text(errno));
}

void write_replacing(const std::string& user_path, const std::string& path, std::string_view bytes) {
  std::string base = base_of(path);
  if (base.empty() || base == "." || base == "..") fail(user_path, "cannot write: is a directory");
  std::string dir = dir_of(path);
  remove_stale_temporaries(dir, base);

  // A fresh name: pid, a process-wide counter and the clock; O_EXCL makes sure.
  static std::atomic<uint64_t> counter{0};
  struct Temp {
    std::string path;
    int fd = -1;
    ~Temp() {
      if (fd >= 0) ::close(fd);
      if (!path.empty()) ::unlink(path.c_str());
    }
  } tmp;
  for (int attempt = 0; tmp.fd < 0; ++attempt) {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    tmp.path = fmt::format("{}/{}{}-{}-{:x}", dir, temp_prefix(base), ::getpid(), counter++, now & 0xffffff);
    tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (tmp.fd < 0) {
      int err = errno;
      tmp.path.clear();  // not ours: never unlink it
      if (err != EEXIST || attempt >= 100) fail(user_path, "cannot write: " + errno_text(err));
    }
  }
  // Keep the mode of the file being replaced (a private checkpoint stays private).
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) (void)::fchmod(tmp.fd, old.st_mode & 07777);

  auto fail_errno = [&](const char* step) { fail(user_path, fmt::format("cannot write ({}): {}", step, errno_text(errno))); };
  write_all(tmp.fd, bytes, user_path);
  if (::fsync(tmp.fd) != 0) fail_errno("fsync");
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) fail_errno("close");
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) fail_errno("rename");
  tmp.path.clear();  // renamed: nothing left to remove

  // Make the rename itself durable. Filesystems that cannot sync a directory
  // (EINVAL) are accepted: the data is in place.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail_errno("open directory");
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    errno = err;
    fail_errno("fsync directory");
  }
}

}  // namespace

OutputTarget resolve_output(const std::string& path) {
  if (path.empty()) throw DataError("cannot write a file with an empty path");
  std::string p = path;
  for (int hops = 0;; ++hops) {
    // /proc's links (/dev/stdout -> /proc/self/fd/1 -> pipe:[...]) name open
    // files, not paths: write through them, never next to them.
    if (p.rfind("/proc/", 0) == 0) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail(path, "cannot write: is a directory");
      return {p, true};
    }
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      int err = errno;
      // A new file (or the missing target of a link); a missing directory
      // is reported by the write, with its reason.
      if (err == ENOENT || err == ENOTDIR) return {p, false};
      fail(path, "cannot write: " + errno_text(err));
    }
    if (S_ISLNK(st.st_mode)) {
      if (hops >= 40) fail(path, "cannot write: " + errno_text(ELOOP));
      // A link to a device or a pipe (/dev/fd/1 -> pipe:[...]) is written
      // through: its text need not be a path.
      struct stat to {};
      if (::stat(p.c_str(), &to) == 0 && (S_ISCHR(to.st_mode) || S_ISFIFO(to.st_mode))) return {p, true};
      std::string target(4096, '\0');
      ssize_t n = ::readlink(p.c_str(), target.data(), target.size());
      if (n < 0) fail(path, "cannot write: " + errno_text(errno));
      target.resize(static_cast<size_t>(n));
      p = target.starts_with('/') ? target : dir_of(p) + "/" + target;
      continue;
    }
    if (S_ISREG(st.st_mode)) return {p, false};
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return {p, true};
    if (S_ISDIR(st.st_mode)) fail(path, "cannot write: is a directory");
    fail(path, "cannot write: not a regular file, character device or FIFO");
  }
}

int remove_stale_temporaries(const std::string& dir, const std::string& name) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  std::string prefix = temp_prefix(name);
  int removed = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (!n.starts_with(prefix)) continue;
    std::string_view rest = n.substr(prefix.size());
    size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits == 0 || digits > 9 || digits >= rest.size() || rest[digits] != '-') continue;
    pid_t pid = static_cast<pid_t>(std::stol(std::string(rest.substr(0, digits))));
    // Only a writer that is gone: a live one (or one we may not signal) keeps its file.
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::string full = dir + "/" + std::string(n);
    struct stat st {};
    if (::lstat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(full.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

void write_output_file(const std::string& path, std::string_view bytes) {
  OutputTarget t = resolve_output(path);
  if (t.in_place) write_in_place(t.path, bytes);
  else write_replacing(path, t.path, bytes);
}

}  // namespace gradc
