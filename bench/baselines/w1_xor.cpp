// W1 xor by hand: h = tanh(x @ W1 + b1), p = sigmoid(h @ W2 + b2),
// loss = mean((p - y)^2), sgd. The SGD update of each weight is folded into
// its gradient's matrix product: W -= lr * A^T dZ is one gemm with alpha = -lr, beta = 1.
#include <cmath>

#include "kernels.h"

namespace bench {
namespace {

class Xor final : public Baseline {
 public:
  Xor(Kind kind, const std::vector<float>& x, const std::vector<float>& y, float lr)
      : kind_(kind), x_(x), y_(y), lr_(lr) {
    add_param("W1", D * H);
    add_param("b1", H);
    add_param("W2", H * 1);
    add_param("b2", 1);
  }

  double step() override {
    ++t_;
    float *W1 = param(0), *b1 = param(1), *W2 = param(2), *b2 = param(3);
    double loss = forward();
    // backward: dh = dz2 @ W2^T with the old W2, then the updates
    gemm(kind_, false, true, B, H, 1, 1.0f, dz2_, W2, 0.0f, dh_);
    gemm(kind_, true, false, H, 1, B, -lr_, h_, dz2_, 1.0f, W2);
    sgd_bias_update(B, 1, lr_, dz2_, b2);
    for (int i = 0; i < B * H; ++i) dh_[i] *= 1.0f - h_[i] * h_[i];  // d tanh = 1 - tanh^2
    gemm(kind_, true, false, D, H, B, -lr_, x_.data(), dh_, 1.0f, W1);
    sgd_bias_update(B, H, lr_, dh_, b1);
    return loss;
  }

  // The same forward and backward with the gradients kept (no update).
  double gradients() override {
    const float* W2 = param(2);
    double loss = forward();
    gemm(kind_, false, true, B, H, 1, 1.0f, dz2_, W2, 0.0f, dh_);
    gemm(kind_, true, false, H, 1, B, 1.0f, h_, dz2_, 0.0f, grad(2));
    sum_rows(B, 1, dz2_, grad(3));
    for (int i = 0; i < B * H; ++i) dh_[i] *= 1.0f - h_[i] * h_[i];
    gemm(kind_, true, false, D, H, B, 1.0f, x_.data(), dh_, 0.0f, grad(0));
    sum_rows(B, H, dh_, grad(1));
    return loss;
  }

 private:
  static constexpr int B = 4, D = 2, H = 8;

  // h, p and dz2 = d loss / d (h @ W2 + b2) at the current params; returns the loss.
  double forward() {
    const float *W1 = param(0), *b1 = param(1), *W2 = param(2), *b2 = param(3);
    gemm(kind_, false, false, B, H, D, 1.0f, x_.data(), W1, 0.0f, h_);
    add_bias_rows(B, H, b1, h_);
    for (float& v : h_) v = std::tanh(v);
    gemm(kind_, false, false, B, 1, H, 1.0f, h_, W2, 0.0f, p_);
    double loss = 0;
    for (int r = 0; r < B; ++r) {
      p_[r] = 1.0f / (1.0f + std::exp(-(p_[r] + b2[0])));
      const float d = p_[r] - y_[r];
      loss += static_cast<double>(d * d);
      // d mse / d p = 2 (p - y) / N;  d sigmoid(z) / dz = p (1 - p)
      dz2_[r] = 2.0f * d / static_cast<float>(B) * p_[r] * (1.0f - p_[r]);
    }
    return loss / B;
  }

  Kind kind_;
  std::vector<float> x_, y_;
  float lr_;
  float h_[B * H], p_[B], dz2_[B], dh_[B * H];
};

}  // namespace

std::unique_ptr<Baseline> make_xor(Kind kind, const std::vector<float>& x, const std::vector<float>& y, float lr) {
  return std::make_unique<Xor>(kind, x, y, lr);
}

}  // namespace bench
