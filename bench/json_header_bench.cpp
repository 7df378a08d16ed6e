// Measures safetensors header parsing for a 10,000-tensor header (issue 13,
// section 7): the candidates for gradc's JSON library, each reading every
// entry's dtype, shape and data_offsets the way the safetensors reader needs.
// Not a test: run by hand (build/bench/json_header_bench [TENSORS] [REPEATS]);
// the numbers are in bench/README.md. gradc's own reader is measured through
// parse_safetensors (checks and tensor construction included).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/tensor_io.h"
#if GRADC_BENCH_SIMDJSON
#include <simdjson.h>
#endif

namespace {

struct Entry {
  std::string name, dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// A checkpoint-like file: names as in a transformer, 1 to 4 dims, tiny data
// (every dim but the last is 1, so the header dominates).
std::string make_file(int tensors) {
  gradc::NamedTensors ts;
  ts.reserve(tensors);
  for (int i = 0; i < tensors; ++i) {
    std::vector<int64_t> shape(1 + i % 4, 1);
    shape.back() = 1 + i % 3;
    ts.emplace_back(fmt::format("model.layers.{}.{}.{}.weight", i / 8, i % 2 ? "self_attn.q_proj" : "mlp.down_proj", i % 8),
                    gradc::Tensor(i % 5 ? gradc::DType::F32 : gradc::DType::F64, shape));
  }
  return gradc::serialize_safetensors(ts, {{"format", "pt"}});
}

double median_ms(int repeats, const std::function<size_t()>& run, size_t expect) {
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    size_t n = run();
    auto t1 = std::chrono::steady_clock::now();
    if (n != expect) throw std::runtime_error(fmt::format("read {} entries, expected {}", n, expect));
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// nlohmann, SAX: no tree; the handler keeps the entries (as gradc's reader does).
struct Sax : nlohmann::json_sax<nlohmann::json> {
  std::vector<Entry> entries;
  int depth = 0;
  std::string field;
  bool in_meta = false;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t v) override { return number(static_cast<uint64_t>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(v); }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool number(uint64_t v) {
    Entry& e = entries.back();
    if (field == "shape") e.shape.push_back(static_cast<int64_t>(v));
    else if (field == "data_offsets") (e.begin == 0 && e.end == 0 ? e.begin : e.end) = v;
    return true;
  }
  bool string(string_t& s) override {
    if (!in_meta && depth == 2 && field == "dtype") entries.back().dtype = std::move(s);
    return true;
  }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return ++depth, true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (depth == 1) {
      in_meta = k == "__metadata__";
      if (!in_meta) entries.push_back(Entry{std::move(k), {}, {}, 0, 0});
    } else if (depth == 2) {
      field = std::move(k);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override { throw e; }
};

}  // namespace

int main(int argc, char** argv) {
  int tensors = argc > 1 ? std::atoi(argv[1]) : 10000;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 51;
  std::string file = make_file(tensors);
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  std::string header = file.substr(8, n);
  fmt::print("{} tensors: header {} bytes, file {} bytes; median of {} runs\n", tensors, header.size(), file.size(), repeats);
  auto report = [&](const char* what, double ms) {
    fmt::print("  {:<52} {:8.3f} ms  {:7.1f} MB/s\n", what, ms, header.size() / ms / 1e3);
  };
  size_t expect = tensors;

  report("gradc parse_safetensors (json, checks, tensors)",
         median_ms(repeats, [&] { return gradc::parse_safetensors(file, "bench").size(); }, expect));

  report("nlohmann::json sax_parse (entries only)", median_ms(repeats, [&] {
           Sax sax;
           nlohmann::json::sax_parse(header, &sax);
           return sax.entries.size();
         }, expect));

  report("nlohmann::json parse to a tree, then walk", median_ms(repeats, [&] {
           nlohmann::json j = nlohmann::json::parse(header);
           std::vector<Entry> es;
           for (auto& [k, v] : j.items()) {
             if (k == "__metadata__") continue;
             Entry e{k, v.at("dtype").get<std::string>(), v.at("shape").get<std::vector<int64_t>>(), 0, 0};
             e.begin = v.at("data_offsets").at(0).get<uint64_t>();
             e.end = v.at("data_offsets").at(1).get<uint64_t>();
             es.push_back(std::move(e));
           }
           return es.size();
         }, expect));

#if GRADC_BENCH_SIMDJSON
  simdjson::padded_string padded(header);
  simdjson::dom::parser dom;
  report("simdjson dom (validates all), then walk", median_ms(repeats, [&] {
           simdjson::dom::object root = dom.parse(padded).get_object();
           std::vector<Entry> es;
           for (auto [k, v] : root) {
             if (k == "__metadata__") continue;
             Entry e{std::string(k), std::string(std::string_view(v["dtype"])), {}, 0, 0};
             for (int64_t d : v["shape"].get_array()) e.shape.push_back(d);
             simdjson::dom::array o = v["data_offsets"];
             e.begin = uint64_t(o.at(0)), e.end = uint64_t(o.at(1));
             es.push_back(std::move(e));
           }
           return es.size();
         }, expect));

  simdjson::ondemand::parser od;
  report("simdjson ondemand (lazy: skipped values unchecked)", median_ms(repeats, [&] {
           simdjson::ondemand::document doc = od.iterate(padded);
           std::vector<Entry> es;
           for (auto field : doc.get_object()) {
             std::string_view k = field.unescaped_key();
             if (k == "__metadata__") continue;
             Entry e{std::string(k), {}, {}, 0, 0};
             for (auto f : field.value().get_object()) {
               std::string_view fk = f.unescaped_key();
               if (fk == "dtype") e.dtype = std::string_view(f.value());
               else if (fk == "shape")
                 for (int64_t d : f.value().get_array()) e.shape.push_back(d);
               else if (fk == "data_offsets") {
                 int i = 0;
                 for (uint64_t x : f.value().get_array()) (i++ ? e.end : e.begin) = x;
               }
             }
             es.push_back(std::move(e));
           }
           return es.size();
         }, expect));
#else
  fmt::print("  (simdjson not found: apt install libsimdjson-dev to compare it)\n");
#endif
  return 0;
}
