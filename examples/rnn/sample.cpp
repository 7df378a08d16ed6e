// Generates text with a trained character-level language model
// (examples/rnn/char_lm.grad): the model compiled for one window at a time
// (B = 1), the checkpoint of `gradc train` loaded into a session, and the
// vocabulary that `gradc text` stored in its output's metadata. From a prompt,
// it runs `forward` on the last T bytes (the model's window), turns the
// logits of the last position into probabilities with a temperature, draws
// the next byte, appends it and slides the window on by one. A context
// shorter than T (the start) is padded on the left with newlines, the byte
// that precedes a paragraph. Built by the project's CMake as rnn_sample.
//
//   rnn_sample MODEL.grad CHECKPOINT VOCAB [--prompt TEXT] [--length N]
//              [--temperature X] [--seed S] [--set D=N ...]
//
// VOCAB is a file gradc text wrote (its "text.vocab" metadata entry: the byte
// value of each id). --temperature 0 takes the most likely byte every time.
// --set binds dims as gradc's --set does: the dims the training run bound
// (its vocabulary V; the window T, which the params do not depend on, may be
// any length).
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The "text.vocab" entry of a safetensors file's "__metadata__": the byte
// values of ids 0, 1, ... ("10 32 33 ..."). The host API reads tensors, not
// metadata, so this reads the JSON header directly: 8 bytes of little-endian
// length, then the header; the entry's value holds only digits and spaces.
std::vector<uint8_t> read_vocab(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  unsigned char len[8] = {};
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | len[i];
  if (!f || n > (uint64_t{100} << 20)) throw std::runtime_error(path + ": not a safetensors file");
  std::string header(n, '\0');
  f.read(header.data(), static_cast<std::streamsize>(n));
  const std::string key = "\"text.vocab\"";
  size_t at = header.find(key);
  if (!f || header.find("\"__metadata__\"") == std::string::npos || at == std::string::npos)
    throw std::runtime_error(path + ": no vocabulary (a file written by `gradc text` has one)");
  at = header.find('"', header.find(':', at + key.size()));
  size_t end = header.find('"', at + 1);
  std::vector<uint8_t> vocab;
  std::string value = header.substr(at + 1, end - at - 1);
  for (size_t i = 0; i < value.size();) {
    size_t next = value.find(' ', i);
    std::string item = value.substr(i, next == std::string::npos ? std::string::npos : next - i);
    if (!item.empty()) vocab.push_back(static_cast<uint8_t>(std::stoi(item)));
    i = next == std::string::npos ? value.size() : next + 1;
  }
  if (vocab.empty()) throw std::runtime_error(path + ": the vocabulary is empty");
  return vocab;
}

int usage() {
  std::cerr << "usage: rnn_sample MODEL.grad CHECKPOINT VOCAB [--prompt TEXT] [--length N] [--temperature X] "
               "[--seed S] [--set D=N ...]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  std::string prompt = "This License";
  long length = 400;
  double temperature = 0.8;
  uint64_t seed = 0;
  // The model for one window at a time: its batch dim bound to 1.
  gradc::CompileOptions opts;
  opts.dims = {{"B", 1}};
  for (int i = 4; i < argc; i += 2) {
    std::string opt = argv[i];
    if (i + 1 >= argc) return usage();
    char* end = nullptr;
    if (opt == "--prompt") prompt = argv[i + 1];
    else if (opt == "--length") length = std::strtol(argv[i + 1], &end, 10);
    else if (opt == "--temperature") temperature = std::strtod(argv[i + 1], &end);
    else if (opt == "--seed") seed = std::strtoull(argv[i + 1], &end, 10);
    else if (opt == "--set") {
      std::string dim = argv[i + 1];
      size_t eq = dim.find('=');
      if (eq == std::string::npos) return usage();
      int64_t n = std::strtoll(dim.c_str() + eq + 1, &end, 10);
      if (n < 1 || *end != 0) return usage();
      end = nullptr;  // (it pointed into `dim`, which ends with this block)
      dim.resize(eq);
      auto it = std::find_if(opts.dims.begin(), opts.dims.end(), [&](const auto& d) { return d.first == dim; });
      if (it != opts.dims.end()) it->second = n;
      else opts.dims.emplace_back(dim, n);
    } else return usage();
    if (end && (*end != 0 || end == argv[i + 1])) return usage();
  }
  if (length < 0 || !(temperature >= 0)) return usage();

  gradc::Model model = gradc::Model::compile_file(argv[1], opts);
  if (!model.ok()) {
    std::cerr << gradc::render_all(model.diagnostics());
    return 1;
  }
  try {
    std::vector<uint8_t> vocab = read_vocab(argv[3]);
    gradc::Session session(model);
    session.load(argv[2]);  // the trained params (the optimizer state is loaded too, and unused)

    const gradc::ModelInfo info = model.info();
    const gradc::TensorInfo* ids_info = nullptr;
    for (const gradc::TensorInfo& t : info.inputs)
      if (t.name == "ids") ids_info = &t;
    if (!ids_info || ids_info->shape.size() != 2) throw std::runtime_error("the model has no input ids : i32[B, T]");
    const int64_t T = ids_info->shape[1];
    // A dynamic window would make every length of the context a size of its
    // own, each compiled on first use: sampling slides a window of one size.
    if (T < 0) throw std::runtime_error("the window T of ids : i32[B, T] is dynamic; give it a size with --set T=N");
    const int64_t V = static_cast<int64_t>(vocab.size());

    // Bytes to ids and back.
    std::array<int32_t, 256> id_of{};
    id_of.fill(-1);
    for (size_t i = 0; i < vocab.size(); ++i) id_of[vocab[i]] = static_cast<int32_t>(i);
    std::vector<int32_t> context;
    for (unsigned char c : prompt) {
      if (id_of[c] < 0) throw std::runtime_error("the prompt has a byte that is not in the vocabulary: " + std::to_string(c));
      context.push_back(id_of[c]);
    }
    int32_t pad = id_of['\n'] >= 0 ? id_of['\n'] : 0;

    std::mt19937_64 rng(seed);
    gradc::Tensor window(gradc::DType::I32, {1, T});
    std::cout << prompt << std::flush;
    for (long n = 0; n < length; ++n) {
      // The last T ids, padded on the left while the context is shorter.
      int32_t* w = window.data<int32_t>();
      int64_t have = std::min<int64_t>(T, static_cast<int64_t>(context.size()));
      std::fill(w, w + (T - have), pad);
      std::copy(context.end() - have, context.end(), w + (T - have));
      gradc::NamedTensors out = session.forward({{"ids", window}});
      const gradc::Tensor* logits = gradc::find_tensor(out, "out.logits");
      if (!logits || logits->rank() != 2 || logits->shape()[1] != V)
        throw std::runtime_error("the model's output logits is not [B * T, " + std::to_string(V) +
                                 "] (is its vocabulary dim the size of VOCAB's?)");
      const float* row = logits->data<float>() + (T - 1) * V;  // the scores of the byte after the window
      int32_t next = 0;
      if (temperature == 0) {
        next = static_cast<int32_t>(std::max_element(row, row + V) - row);
      } else {
        // softmax(row / temperature), then one draw.
        double top = *std::max_element(row, row + V), sum = 0;
        std::vector<double> p(static_cast<size_t>(V));
        for (int64_t v = 0; v < V; ++v) sum += p[static_cast<size_t>(v)] = std::exp((row[v] - top) / temperature);
        double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
        next = static_cast<int32_t>(V - 1);
        for (int64_t v = 0; v < V; ++v)
          if ((u -= p[static_cast<size_t>(v)]) < 0) {
            next = static_cast<int32_t>(v);
            break;
          }
      }
      context.push_back(next);
      std::cout << static_cast<char>(vocab[static_cast<size_t>(next)]) << std::flush;
    }
    std::cout << "\n";
  } catch (const std::exception& e) {  // gradc::DataError from the library, ours above
    std::cerr << "rnn_sample: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
