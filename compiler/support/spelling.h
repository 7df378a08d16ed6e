// "Did you mean ...?": the closest of a set of names to a misspelled one,
// for the language's diagnostics and the command line's usage errors alike.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace gradc {

// The edit distance: insertions, deletions, substitutions and swaps of two
// adjacent characters, each one edit (optimal string alignment).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `name` within a third of its length (at least 1)
// edits, the first of equals; "" when none is that close, or `name` is over
// 64 characters (no one misspells a 64-character name).
std::string_view closest_name(std::string_view name, const std::vector<std::string_view>& candidates);

}  // namespace gradc
