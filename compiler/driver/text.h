// `gradc text FILE --window T [--stride S] [--vocab VOCAB] -o OUT`: a text
// file as training data for a character-level (byte-level) language model.
// Every byte becomes an id, its rank in the vocabulary (the byte values that
// occur in FILE, sorted; with --vocab, the text.vocab of a file gradc text
// wrote, or the byte values of any other file); window i holds the ids of bytes
// [i*S, i*S + T) as `ids` and of bytes [i*S + 1, i*S + T + 1) as `targets`
// (the byte that follows each position), both i32 [N, T]. The vocabulary is
// stored in the output's safetensors metadata (text.vocab: the byte values
// of ids 0, 1, ..., decimal, space-separated), so that generated ids can be
// mapped back to text and a second text encoded with the same ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/driver/options.h"
#include "runtime/tensor_io.h"

namespace gradc::driver {

// Returns the exit status; throws DataError for a file it cannot read or
// write, an empty or too short text, or a byte outside --vocab's vocabulary.
int cmd_text(const Options& o);

// The metadata entry that holds the vocabulary, and its text ("10 32 33").
inline constexpr const char* kTextVocabKey = "text.vocab";
std::string vocab_text(const std::vector<uint8_t>& vocab);
// The vocabulary of a text file's metadata (`what` names it in errors):
// distinct byte values in increasing order. Throws DataError when the entry
// is missing or malformed.
std::vector<uint8_t> vocab_of(const TensorFileMetadata& metadata, const std::string& what);

}  // namespace gradc::driver
