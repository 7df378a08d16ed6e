// W2 logreg by hand: z = x @ w + b, loss = mean(bce_with_logits(z, y)), sgd.
// bce_with_logits(z, y) = max(z, 0) - z y + log1p(exp(-|z|)); its gradient is
// (sigmoid(z) - y) / B. The matrix-vector products use gemv in the BLAS variant.
#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace bench {
namespace {

class Logreg final : public Baseline {
 public:
  Logreg(Kind kind, int B, int D, const std::vector<float>& x, const std::vector<float>& y, float lr)
      : kind_(kind), B_(B), D_(D), x_(x), y_(y), lr_(lr), z_(static_cast<size_t>(B)) {
    add_param("w", static_cast<size_t>(D));
    add_param("b", 1);
  }

  double step() override {
    ++t_;
    float *w = param(0), *b = param(1);
    float db = 0;
    double loss = forward(db);
    gemv(kind_, true, B_, D_, -lr_, x_.data(), z_.data(), 1.0f, w);  // w -= lr * x^T dz
    b[0] -= lr_ * db;
    return loss;
  }

  // The same forward and backward with the gradients kept (no update).
  double gradients() override {
    float db = 0;
    double loss = forward(db);
    gemv(kind_, true, B_, D_, 1.0f, x_.data(), z_.data(), 0.0f, grad(0));  // x^T dz
    grad(1)[0] = db;
    return loss;
  }

 private:
  // z_ = d loss / d z at the current params, db its sum; returns the loss.
  double forward(float& db) {
    const float *w = param(0), *b = param(1);
    gemv(kind_, false, B_, D_, 1.0f, x_.data(), w, 0.0f, z_.data());
    double loss = 0;
    const float inv_b = 1.0f / static_cast<float>(B_);
    for (int r = 0; r < B_; ++r) {
      const float z = z_[r] + b[0], y = y_[r];
      const float e = std::exp(-std::fabs(z));
      loss += static_cast<double>(std::max(z, 0.0f) - z * y + std::log1p(e));
      const float sig = z >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
      z_[r] = (sig - y) * inv_b;  // now d loss / d z
      db += z_[r];
    }
    return loss / B_;
  }

  Kind kind_;
  int B_, D_;
  std::vector<float> x_, y_;
  float lr_;
  std::vector<float> z_;
};

}  // namespace

std::unique_ptr<Baseline> make_logreg(Kind kind, int B, int D, const std::vector<float>& x,
                                      const std::vector<float>& y, float lr) {
  return std::make_unique<Logreg>(kind, B, D, x, y, lr);
}

}  // namespace bench
