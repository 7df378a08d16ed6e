// Tensor files on disk: atomic writes (replace, fail cleanly, keep the old
// file), bounded reads, and read_tensor_file's dispatch on the extension.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <exception>
#include <thread>
#include <fmt/format.h>

#include "runtime/output_file.h"
#include "runtime/tensor_io.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::bytes_of;
using test::check_style;
using test::error_of;
using test::TempDir;

NamedTensors sample(float value, int64_t n = 3) {
  NamedTensors ts;
  ts.emplace_back("w", Tensor(DType::F32, {n}));
  for (int64_t i = 0; i < n; ++i) ts[0].second.set(i, value);
  return ts;
}

TEST_CASE("write_safetensors then read_safetensors gives the tensors and metadata back") {
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  NamedTensors ts = sample(1.5f);
  ts.emplace_back("step", Tensor(DType::I32, {}));
  ts[1].second.set(0, 12);
  write_safetensors(path, ts, {{"epoch", "3"}});
  TensorFileMetadata meta;
  NamedTensors back = read_safetensors(path, &meta);
  REQUIRE(back.size() == 2);
  CHECK(test::same_tensor(back[0].second, ts[0].second));
  CHECK(back[1].second.get(0) == 12);
  CHECK(meta == TensorFileMetadata{{"epoch", "3"}});
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("an atomic write replaces an existing file and leaves no temporary file") {
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  test::write_bytes(path, "old contents");
  ::chmod(path.c_str(), 0640);
  write_safetensors(path, sample(2.0f));
  CHECK(read_safetensors(path)[0].second.get(2) == 2.0);
  write_safetensors(path, sample(3.0f, 5));
  NamedTensors back = read_safetensors(path);
  CHECK(back[0].second.type_string() == "f32[5]");
  CHECK(back[0].second.get(4) == 3.0);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);  // the replaced file's mode is kept

  // A relative path (no directory part) works too.
  std::string cwd = std::filesystem::current_path().string();
  std::filesystem::current_path(dir.path());
  write_output_file("plain.bin", "xyz");
  std::filesystem::current_path(cwd);
  CHECK(test::file_bytes(dir / "plain.bin") == "xyz");
}

TEST_CASE("a write into a missing directory throws and creates nothing") {
  TempDir dir;
  std::string path = dir / "missing/sub/ckpt.safetensors";
  std::string msg = error_of([&] { write_safetensors(path, sample(1.0f)); });
  check_style(msg, path);
  CHECK_THAT(msg, Catch::Contains("no such file or directory"));
  CHECK(dir.entries().empty());
}

TEST_CASE("a directory as the target is refused before anything is written") {
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  std::filesystem::create_directory(path);
  test::write_bytes(dir / "ckpt.safetensors/inside", "keep me");
  std::string msg = error_of([&] { write_safetensors(path, sample(1.0f)); });
  check_style(msg, path);
  CHECK_THAT(msg, Catch::Contains("is a directory"));
  CHECK(std::filesystem::is_directory(path));
  CHECK(test::file_bytes(dir / "ckpt.safetensors/inside") == "keep me");
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
  CHECK_THAT(error_of([&] { write_output_file(dir / "", "x"); }), Catch::Contains("is a directory"));
}

// Limits the size of files this process may write, for the scope, so that
// write() fails with EFBIG: a disk-full error that also happens as root.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

TEST_CASE("a write that fails part way leaves the old file intact") {
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  write_safetensors(path, sample(7.0f));
  std::string before = test::file_bytes(path);
  std::string msg;
  {
    FileSizeLimit limit(4096);
    msg = error_of([&] { write_safetensors(path, sample(8.0f, 100000)); });
  }
  check_style(msg, path);
  CHECK_THAT(msg, Catch::Contains("cannot write (write): file too large"));
  CHECK(test::file_bytes(path) == before);
  CHECK(read_safetensors(path)[0].second.get(0) == 7.0);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
}

// Lowers the limit on open files, for the scope, to the lowest free descriptor,
// so that the next open() fails with EMFILE: the temporary file cannot be
// created, as in a read-only directory, and unlike that case also as root.
class NoFreeDescriptors {
 public:
  NoFreeDescriptors() {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old_) == 0);
    int lowest = ::dup(0);
    REQUIRE(lowest >= 0);
    ::close(lowest);
    rlimit lim = old_;
    lim.rlim_cur = static_cast<rlim_t>(lowest);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
  }
  ~NoFreeDescriptors() { ::setrlimit(RLIMIT_NOFILE, &old_); }

 private:
  rlimit old_{};
};

// The DataError message of `f` run with no free descriptor. The exception is
// examined once descriptors are free again: UBSan's check of a virtual call
// (what()) reads /proc, and fails without one.
template <class F>
std::string error_without_descriptors(F&& f) {
  std::exception_ptr error;
  {
    NoFreeDescriptors limit;
    try {
      f();
    } catch (...) {
      error = std::current_exception();
    }
  }
  return error_of([&] {
    if (error) std::rethrow_exception(error);
  });
}

// The failure: no temporary file can be created next to the target. The old
// file stays, nothing else appears, and the message names the path and cause.
TEST_CASE("a write whose temporary file cannot be created leaves the old file intact") {
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  write_safetensors(path, sample(7.0f));
  std::string before = test::file_bytes(path);
  std::string msg;
  SECTION("no file descriptor is free (EMFILE; also as root)") {
    msg = error_without_descriptors([&] { write_safetensors(path, sample(8.0f)); });
    CHECK_THAT(msg, Catch::Contains("cannot write: too many open files"));
  }
  SECTION("the directory is read-only (EACCES; root may write anyway)") {
    if (::geteuid() == 0) return;  // the EMFILE section covers this failure as root
    REQUIRE(::chmod(dir.path().c_str(), 0555) == 0);
    msg = error_of([&] { write_safetensors(path, sample(8.0f)); });
    ::chmod(dir.path().c_str(), 0755);
    CHECK_THAT(msg, Catch::Contains("cannot write: permission denied"));
  }
  check_style(msg, path);
  CHECK(test::file_bytes(path) == before);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("a path under a regular file cannot be written or read (ENOTDIR, also as root)") {
  TempDir dir;
  std::string file = dir / "plain";
  test::write_bytes(file, "keep me");
  std::string path = file + "/ckpt.safetensors";
  std::string msg = error_of([&] { write_safetensors(path, sample(1.0f)); });
  check_style(msg, path);
  CHECK_THAT(msg, Catch::Contains("cannot write: not a directory"));
  msg = error_of([&] { read_safetensors(path); });
  check_style(msg, path);
  CHECK_THAT(msg, Catch::Contains("cannot open: not a directory"));
  CHECK(test::file_bytes(file) == "keep me");
  CHECK(dir.entries() == std::vector<std::string>{"plain"});
}

TEST_CASE("write_safetensors rejects bad names before touching the disk") {
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  NamedTensors ts = sample(1.0f);
  ts.emplace_back("w", Tensor(DType::F32, {1}));
  std::string msg = error_of([&] { write_safetensors(path, ts); });
  check_style(msg, path);
  CHECK_THAT(msg, Catch::Contains("cannot save tensor 'w' twice"));
  CHECK(dir.entries().empty());
}

TEST_CASE("read_binary_file errors name the path") {
  TempDir dir;
  std::string missing = dir / "nope.safetensors";
  std::string msg = error_of([&] { read_safetensors(missing); });
  check_style(msg, missing);
  CHECK_THAT(msg, Catch::Contains("cannot open: no such file or directory"));

  std::string d = dir.path().string();
  msg = error_of([&] { read_npy(d); });
  check_style(msg, d);
  CHECK_THAT(msg, Catch::Contains("is a directory"));

  std::string small = dir / "small.bin";
  test::write_bytes(small, std::string(100, 'x'));
  CHECK(read_binary_file(small).size() == 100);
  CHECK(read_binary_file(small, 100).size() == 100);
  msg = error_of([&] { read_binary_file(small, 99); });
  check_style(msg, small);
  CHECK_THAT(msg, Catch::Contains("file is 100 bytes, larger than the limit of 99 bytes"));

  // A device has no size and may never end (/dev/zero): refused.
  for (std::string dev : {"/dev/zero", "/dev/urandom", "/dev/null"}) {
    msg = error_of([&] { read_binary_file(dev); });
    check_style(msg, dev);
    CHECK_THAT(msg, Catch::Contains("not a regular file or a pipe"));
  }

  if (::geteuid() != 0) {  // as root, the ENOTDIR and EMFILE cases above fail open() instead
    REQUIRE(::chmod(small.c_str(), 0) == 0);
    CHECK_THAT(error_of([&] { read_binary_file(small); }), Catch::Contains("permission denied"));
  }
  msg = error_without_descriptors([&] { read_binary_file(small); });
  check_style(msg, small);
  CHECK_THAT(msg, Catch::Contains("cannot open: too many open files"));
}

TEST_CASE("read_tensor_file dispatches on the extension") {
  TempDir dir;
  write_safetensors(dir / "params.safetensors", sample(4.0f));
  NamedTensors st = read_tensor_file(dir / "params.safetensors", "ignored");
  REQUIRE(st.size() == 1);
  CHECK(st[0].first == "w");

  std::string npy = test::npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", bytes_of<float>({1, 2}));
  test::write_bytes(dir / "x.npy", npy);
  test::write_bytes(dir / "X.NPY", npy);
  for (const char* name : {"x.npy", "X.NPY"}) {
    NamedTensors ts = read_tensor_file(dir / name, "x");
    REQUIRE(ts.size() == 1);
    CHECK(ts[0].first == "x");
    CHECK(ts[0].second.type_string() == "f32[2]");
    CHECK(ts[0].second.get(1) == 2);
  }
  CHECK(read_npy(dir / "x.npy").get(0) == 1);

  // The extension decides: a .npy that holds safetensors bytes is a .npy error.
  test::write_bytes(dir / "wrong.npy", test::file_bytes(dir / "params.safetensors"));
  CHECK_THAT(error_of([&] { read_tensor_file(dir / "wrong.npy", "x"); }), Catch::Contains("not a .npy file"));

  for (const char* name : {"data.bin", "data.pt", "data.npz", "data"}) {
    std::string path = dir / name;
    test::write_bytes(path, "whatever");
    std::string msg = error_of([&] { read_tensor_file(path, "x"); });
    check_style(msg, path);
    CHECK_THAT(msg, Catch::Contains("(supported: .safetensors, .npy, IDX)"));
  }
  CHECK_THAT(error_of([&] { read_tensor_file(dir / "data.bin", "x"); }), Catch::Contains("extension '.bin'"));
}

}  // namespace
}  // namespace gradc

namespace gradc {
namespace {

TEST_CASE("a pipe is read in chunks up to the limit, and a FIFO without a writer reads as empty") {
  // A FIFO nobody writes to: open() does not wait for a writer.
  test::TempDir dir;
  std::string fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(read_binary_file(fifo).empty());

  // An endless writer: the read stops at the limit with an error.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto old_handler = std::signal(SIGPIPE, SIG_IGN);
  std::thread writer([w = fds[1]] {
    std::string block(65536, '\0');
    while (::write(w, block.data(), block.size()) > 0) {
    }
    ::close(w);
  });
  std::string path = fmt::format("/proc/self/fd/{}", fds[0]);
  std::string msg = test::error_of([&] { read_binary_file(path, 100000); });
  ::close(fds[0]);  // the writer's next write fails with EPIPE and it stops
  writer.join();
  std::signal(SIGPIPE, old_handler);
  CHECK_THAT(msg, Catch::Contains("larger than the limit of 100000 bytes"));
}

}  // namespace
}  // namespace gradc
