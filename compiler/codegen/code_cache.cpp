// The on-disk code cache: keys, the file format, and the process's settings.
//
// File "<key>.gco" in the cache directory:
//   8 bytes  "gradcobj"
//   4 bytes  format version (little-endian)
//   4 bytes  header size in bytes (96)
//   64 bytes the key (hex)
//   8 bytes  the payload's size
//   8 bytes  the payload's XXH3-64 checksum
// then the payload: the entry's object files (ELF for the host; one per part
// of a module compiled in parallel, module_split.h) as pack_objects lays them
// out. Files are written to a temporary
// name and renamed, so a reader sees a whole file or none; they are not
// fsync'ed: a file torn by a crash fails its checksum and is recompiled.
// A hit touches its file; a directory of more than kMaxFiles cache files
// loses its least recently used ones when the next file is written.
// Trust (docs/internals.md, "The code cache"): the directory and each file
// must belong to this user (or root) and be writable by nobody else; files
// are opened without following links or blocking, and only regular files
// whose real size matches their header are read.
#include "compiler/codegen/code_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <llvm/ADT/StringExtras.h>
#include <llvm/Support/SHA256.h>
#include <llvm/Support/xxhash.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "gradc/session.h"

namespace gradc {
namespace {

constexpr char kMagic[8] = {'g', 'r', 'a', 'd', 'c', 'o', 'b', 'j'};
constexpr uint32_t kFormatVersion = 2;  // 2: the payload is a pack of objects
constexpr size_t kHeaderSize = 8 + 4 + 4 + 64 + 8 + 8;
constexpr uint64_t kMaxObjectBytes = uint64_t{1} << 30;  // larger files are not ours
constexpr size_t kMaxFiles = 4096, kKeepFiles = 3072;     // tens of KiB each

struct Settings {
  std::mutex mutex;
  bool set = false;  // set_code_cache_dir was called
  std::string dir;
};
Settings& settings() {
  static Settings s;
  return s;
}

std::atomic<int64_t> hits{0}, misses{0}, rejected{0}, stores{0}, store_failures{0};

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// Keeps the directory bounded: past kMaxFiles cache files, removes the least
// recently used (written or hit) down to kKeepFiles; also removes temporary
// files that a killed writer left, after an hour. Errors are ignored.
void trim(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code time_ec;
    fs::file_time_type t = it->last_write_time(time_ec);
    if (time_ec) continue;
    if (p.extension() == ".gco") files.emplace_back(t, p);
    else if (p.filename().string().find(".gco.tmp.") != std::string::npos && now - t > std::chrono::hours(1))
      fs::remove(p, time_ec);
  }
  if (files.size() <= kMaxFiles) return;
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + kKeepFiles < files.size(); ++i) fs::remove(files[i].second, ec);
}

// Whether a file or directory can be trusted with code that gradc will run:
// owned by this user (or root) and writable by nobody else. The checksum in a
// file's header catches corruption, not tampering; this is what keeps another
// user from planting code.
bool trusted_owner(const struct stat& st) {
  return (st.st_uid == ::geteuid() || st.st_uid == 0) && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

// Reads exactly n bytes; false on an error or an early end.
bool read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

// Why directory `dir` cannot hold the cache ("" when it can), creating it
// (mode 0700, its missing parents as usual) when it is missing. A directory
// that cannot be created is not refused here: storing then fails and counts.
std::string refusal(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p(dir);
  if (!std::filesystem::exists(p, ec)) {
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
    ::mkdir(dir.c_str(), 0700);
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return "";
  if (!S_ISDIR(st.st_mode)) return "it is not a directory";
  if (st.st_uid != ::geteuid() && st.st_uid != 0) return fmt::format("it belongs to another user (uid {})", st.st_uid);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fmt::format("other users can write to it (mode {:04o})", st.st_mode & 07777);
  return "";
}

}  // namespace

std::string usable_code_cache_dir() {
  std::string dir = active_code_cache_dir();
  if (dir.empty()) return dir;
  // Checked once per directory and process; a refusal is said once.
  static std::mutex mutex;
  static std::map<std::string, bool> verdicts;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = verdicts.find(dir);
  if (it == verdicts.end()) {
    std::string why = refusal(dir);
    if (!why.empty())
      std::fprintf(stderr, "gradc: warning: not using the code cache '%s': %s; compiling without it\n", dir.c_str(),
                   why.c_str());
    it = verdicts.emplace(dir, why.empty()).first;
  }
  return it->second ? dir : "";
}

CodeCacheKey code_cache_key(std::string_view material) {
  llvm::SHA256 sha;
  sha.update(llvm::StringRef(material.data(), material.size()));
  std::array<uint8_t, 32> digest = sha.final();
  return {llvm::toHex(digest, /*LowerCase=*/true)};
}

std::string code_cache_path(const std::string& dir, const CodeCacheKey& key) {
  return (std::filesystem::path(dir) / (key.hex + ".gco")).string();
}

std::string active_code_cache_dir() {
  Settings& s = settings();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.set) return s.dir;
  }
  const char* env = std::getenv("GRADC_CACHE_DIR");
  return env ? env : "";
}

std::optional<std::string> code_cache_load(const std::string& dir, const CodeCacheKey& key) {
  // Not blocking (a FIFO in the directory would wait for a writer), not
  // following a link (it could point anywhere): only a regular file that this
  // user owns and nobody else can write is read.
  int fd = ::open(code_cache_path(dir, key).c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::nullopt;  // no file: an ordinary miss
  auto reject = [&] {
    if (fd >= 0) ::close(fd);
    rejected.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  };
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !trusted_owner(st)) return reject();
  char header[kHeaderSize];
  if (!read_all(fd, header, kHeaderSize) || std::memcmp(header, kMagic, 8) != 0 ||
      get_le(header + 8, 4) != kFormatVersion || get_le(header + 12, 4) != kHeaderSize ||
      std::string_view(header + 16, 64) != key.hex)
    return reject();
  uint64_t size = get_le(header + 80, 8), checksum = get_le(header + 88, 8);
  // The size is checked against the file's before anything is allocated:
  // truncated, or longer than its header says, is rejected here.
  if (size == 0 || size > kMaxObjectBytes || static_cast<uint64_t>(st.st_size) != kHeaderSize + size) return reject();
  std::string object(static_cast<size_t>(size), '\0');
  if (!read_all(fd, object.data(), object.size())) return reject();
  if (llvm::xxh3_64bits(llvm::StringRef(object)) != checksum) return reject();
  ::futimens(fd, nullptr);  // recently used (a read-only cache is fine)
  ::close(fd);
  return object;
}

bool code_cache_store(const std::string& dir, const CodeCacheKey& key, std::string_view object) {
  std::string bytes(kMagic, 8);
  put_u32(bytes, kFormatVersion);
  put_u32(bytes, kHeaderSize);
  bytes += key.hex;
  put_u64(bytes, object.size());
  put_u64(bytes, llvm::xxh3_64bits(llvm::StringRef(object.data(), object.size())));
  bytes.append(object);

  std::string path = code_cache_path(dir, key);
  static std::atomic<uint64_t> serial{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial.fetch_add(1)) + "." +
                    std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  auto fail = [&] {
    store_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail();
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  bool ok = ::close(fd) == 0 && left == 0;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return fail();
  }
  stores.fetch_add(1, std::memory_order_relaxed);
  trim(dir);
  return true;
}

CodeCacheStats code_cache_stats() {
  return {hits.load(), misses.load(), rejected.load(), stores.load(), store_failures.load()};
}

void code_cache_count_hit() { hits.fetch_add(1, std::memory_order_relaxed); }
void code_cache_count_miss() { misses.fetch_add(1, std::memory_order_relaxed); }
void code_cache_count_rejected() { rejected.fetch_add(1, std::memory_order_relaxed); }

void set_code_cache_dir(std::string dir) {
  Settings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.set = true;
  s.dir = std::move(dir);
}

std::string code_cache_dir() { return active_code_cache_dir(); }


std::string pack_objects(const std::vector<std::string>& objects) {
  std::string s;
  put_u32(s, static_cast<uint32_t>(objects.size()));
  for (const std::string& o : objects) {
    put_u64(s, o.size());
    s.append(o);
  }
  return s;
}

std::optional<std::vector<std::string>> unpack_objects(std::string_view pack) {
  if (pack.size() < 4) return std::nullopt;
  uint64_t count = get_le(pack.data(), 4);
  size_t at = 4;
  std::vector<std::string> objects;
  for (uint64_t i = 0; i < count; ++i) {
    if (pack.size() - at < 8) return std::nullopt;
    uint64_t size = get_le(pack.data() + at, 8);
    at += 8;
    if (size > pack.size() - at) return std::nullopt;
    objects.emplace_back(pack.substr(at, static_cast<size_t>(size)));
    at += static_cast<size_t>(size);
  }
  if (at != pack.size() || objects.empty()) return std::nullopt;
  return objects;
}

}  // namespace gradc
