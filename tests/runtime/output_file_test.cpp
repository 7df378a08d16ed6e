// write_output_file's rules for what a path means (runtime/output_file.h):
// regular files replaced atomically, symbolic links followed and kept,
// character devices and FIFOs written in place, directories refused, and the
// temporary files of killed writers cleaned up.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <thread>

#include "runtime/output_file.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::check_style;
using test::error_of;
using test::TempDir;

bool is_symlink(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A process id that is not running: a child that has exited and been reaped.
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return pid;
}

TEST_CASE("a symbolic link is followed: its target is replaced and the link kept") {
  TempDir dir;
  std::filesystem::create_directory(dir / "store");
  test::write_bytes(dir / "store/ckpt.bin", "old");
  std::filesystem::create_symlink("store/ckpt.bin", dir / "link.bin");
  write_output_file(dir / "link.bin", "new");
  CHECK(is_symlink(dir / "link.bin"));
  CHECK(test::file_bytes(dir / "store/ckpt.bin") == "new");
  // The temporary file went next to the target, and nothing is left over.
  CHECK(dir.entries() == std::vector<std::string>{"link.bin", "store"});
  CHECK(TempDir::entries_of(dir / "store") == std::vector<std::string>{"ckpt.bin"});

  // A link whose target does not exist yet creates the target.
  std::filesystem::create_symlink("store/fresh.bin", dir / "dangling.bin");
  write_output_file(dir / "dangling.bin", "fresh");
  CHECK(is_symlink(dir / "dangling.bin"));
  CHECK(test::file_bytes(dir / "store/fresh.bin") == "fresh");
}

TEST_CASE("a link loop is an error naming the path") {
  TempDir dir;
  std::filesystem::create_symlink("b", dir / "a");
  std::filesystem::create_symlink("a", dir / "b");
  std::string msg = error_of([&] { write_output_file(dir / "a", "x"); });
  check_style(msg, dir / "a");
  CHECK_THAT(msg, Catch::Contains("symbolic links"));
}

TEST_CASE("/dev/null is written in place and stays a character device") {
  OutputTarget t = resolve_output("/dev/null");
  CHECK(t.in_place);
  write_output_file("/dev/null", "discarded");
  struct stat st {};
  REQUIRE(::stat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
}

TEST_CASE("a FIFO is written in place: its reader gets the bytes and it stays a FIFO") {
  TempDir dir;
  std::string fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = test::file_bytes(fifo); });
  write_output_file(fifo, "through the pipe");
  reader.join();
  CHECK(got == "through the pipe");
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(dir.entries() == std::vector<std::string>{"pipe"});
}

TEST_CASE("a directory is refused, also through a link") {
  TempDir dir;
  std::filesystem::create_directory(dir / "d");
  std::filesystem::create_symlink("d", dir / "to-d");
  for (std::string p : {dir / "d", dir / "to-d"}) {
    std::string msg = error_of([&] { write_output_file(p, "x"); });
    check_style(msg, p);
    CHECK_THAT(msg, Catch::Contains("is a directory"));
  }
  CHECK(TempDir::entries_of(dir / "d").empty());
}

TEST_CASE("a stale temporary file of a dead writer is removed, a live writer's is kept") {
  TempDir dir;
  std::string dead = fmt::format(".ckpt.bin.tmp-{}-0-abc", dead_pid());
  std::string live = fmt::format(".ckpt.bin.tmp-{}-99-abc", ::getpid());
  std::string other = fmt::format(".other.bin.tmp-{}-0-abc", dead_pid());
  for (const auto& n : {dead, live, other}) test::write_bytes(dir / n, "partial");
  write_output_file(dir / "ckpt.bin", "whole");
  CHECK(test::file_bytes(dir / "ckpt.bin") == "whole");
  auto names = dir.entries();
  CHECK(std::find(names.begin(), names.end(), dead) == names.end());
  CHECK(std::find(names.begin(), names.end(), live) != names.end());
  CHECK(std::find(names.begin(), names.end(), other) != names.end());  // another file's: not ours to judge
}

}  // namespace
}  // namespace gradc
