// The state handling shared by every hand-written baseline.
#include "baseline.h"

#include <algorithm>
#include <stdexcept>

namespace bench {

size_t Baseline::add_param(std::string name, size_t n) {
  params_.push_back({std::move(name), std::vector<float>(n, 0.0f)});
  return params_.size() - 1;
}

size_t Baseline::add_slot(size_t n) {
  slots_.emplace_back(n, 0.0f);
  return slots_.size() - 1;
}

void Baseline::set_params(const std::vector<Buffer>& from) {
  for (Buffer& p : params_) {
    auto it = std::find_if(from.begin(), from.end(), [&](const Buffer& b) { return b.name == p.name; });
    if (it == from.end()) throw std::runtime_error("baseline: no initial value for param '" + p.name + "'");
    if (it->data.size() != p.data.size())
      throw std::runtime_error("baseline: param '" + p.name + "' has " + std::to_string(it->data.size()) +
                               " elements, expected " + std::to_string(p.data.size()));
    p.data = it->data;
  }
  for (auto& s : slots_) std::fill(s.begin(), s.end(), 0.0f);
  t_ = 0;
}

void Baseline::snapshot() {
  saved_params_ = params_;
  saved_slots_ = slots_;
  saved_t_ = t_;
}

void Baseline::restore() {
  for (size_t i = 0; i < params_.size(); ++i) std::copy(saved_params_[i].data.begin(), saved_params_[i].data.end(), params_[i].data.begin());
  for (size_t i = 0; i < slots_.size(); ++i) std::copy(saved_slots_[i].begin(), saved_slots_[i].end(), slots_[i].begin());
  t_ = saved_t_;
}

}  // namespace bench
