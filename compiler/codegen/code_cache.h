// The on-disk cache of compiled entry points (include/gradc/session.h,
// set_code_cache_dir): one entry's code per key (its object files,
// pack_objects), in a file that starts with a
// header holding a magic number, the format version, the key, the payload's
// size and its checksum, so that a truncated, corrupt or foreign file is
// recognized and recompiled instead of loaded.
//
// Plain C++ (LLVM stays in the .cpp files).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gradc {

// A SHA-256 of everything that determines the machine code of an entry point,
// as 64 hex digits.
struct CodeCacheKey {
  std::string hex;
};
CodeCacheKey code_cache_key(std::string_view material);

// The cache directory in use ("" when off): set_code_cache_dir's, else $GRADC_CACHE_DIR.
std::string active_code_cache_dir();
// The directory the JIT may read and write: active_code_cache_dir(), created
// with mode 0700 when missing, or "" when it is off or cannot be trusted (it
// belongs to another user, or other users can write to it), which is said
// once per directory on stderr as a warning.
std::string usable_code_cache_dir();

// The payload stored under `key` in `dir`, when there is a well-formed one
// (a missing file is a miss; a malformed one, or anything but a regular file
// of this user's that only this user can write, counts as rejected).
std::optional<std::string> code_cache_load(const std::string& dir, const CodeCacheKey& key);
// Stores the payload `object` under `key` atomically; returns false (and counts a
// failure) when the directory or file cannot be written. Never throws.
bool code_cache_store(const std::string& dir, const CodeCacheKey& key, std::string_view object);
// Counts a miss (a compile), or a file whose object the JIT could not load.
void code_cache_count_miss();
void code_cache_count_rejected();
void code_cache_count_hit();

// An entry's object files (one per part, module_split.h) as one payload, and
// back; unpack_objects gives nullopt for anything pack_objects did not make.
std::string pack_objects(const std::vector<std::string>& objects);
std::optional<std::vector<std::string>> unpack_objects(std::string_view pack);

// The path of the file for `key` (for tests and messages).
std::string code_cache_path(const std::string& dir, const CodeCacheKey& key);

}  // namespace gradc
