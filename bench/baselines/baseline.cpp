// The state handling shared by every hand-written baseline.
#include "baseline.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace bench {

size_t Baseline::add_param(std::string name, size_t n) {
  grads_.push_back({name, std::vector<float>(n, 0.0f)});
  params_.push_back({std::move(name), std::vector<float>(n, 0.0f)});
  return params_.size() - 1;
}

size_t Baseline::add_slot(size_t n) {
  slots_.emplace_back(n, 0.0f);
  return slots_.size() - 1;
}

void Baseline::note_relu_inputs(const float* z, size_t n) {
  float lo = INFINITY, hi = 0;
  for (size_t i = 0; i < n; ++i) lo = std::min(lo, std::fabs(z[i])), hi = std::max(hi, std::fabs(z[i]));
  if (hi > 0) relu_margin_ = std::min(relu_margin_, double(lo) / hi);
}

double Baseline::compute_grads() {
  relu_margin_ = 1;
  const double loss = gradients();
  if (grad_error_ != 0)
    for (Buffer& g : grads_) {
      float scale = 0;
      for (float v : g.data) scale = std::max(scale, std::fabs(v));
      g.data[g.data.size() / 2] += static_cast<float>(grad_error_) * scale;
    }
  return loss;
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
