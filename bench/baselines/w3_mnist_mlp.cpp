// W3 mnist_mlp by hand: h = relu(x @ W1 + b1), z = h @ W2 + b2,
// loss = cross_entropy(z, label), sgd with momentum (SPEC 2.5: buf = g at
// t = 1, else momentum * buf + g; p -= lr * buf). The momentum buffer of each
// weight is computed by its gradient's matrix product directly (beta = momentum).
#include <algorithm>

#include "kernels.h"

namespace bench {
namespace {

class MnistMlp final : public Baseline {
 public:
  MnistMlp(Kind kind, int B, int D, int H, int C, const std::vector<float>& x, const std::vector<int32_t>& labels,
           float lr, float momentum)
      : kind_(kind), B_(B), D_(D), H_(H), C_(C), x_(x), labels_(labels), lr_(lr), momentum_(momentum),
        h_(size_t(B) * H), z_(size_t(B) * C), dh_(size_t(B) * H), gb_(size_t(std::max(H, C))) {
    add_param("W1", size_t(D) * H);
    add_param("b1", size_t(H));
    add_param("W2", size_t(H) * C);
    add_param("b2", size_t(C));
    for (const Buffer& p : params_) add_slot(p.data.size());  // momentum_buffer
  }

  double step() override {
    ++t_;
    float *W1 = param(0), *b1 = param(1), *W2 = param(2), *b2 = param(3);
    const float beta = t_ == 1 ? 0.0f : momentum_;  // buf = g at t = 1
    // forward
    gemm(kind_, false, false, B_, H_, D_, 1.0f, x_.data(), W1, 0.0f, h_.data());
    add_bias_rows(B_, H_, b1, h_.data());
    for (float& v : h_) v = v > 0.0f ? v : 0.0f;
    gemm(kind_, false, false, B_, C_, H_, 1.0f, h_.data(), W2, 0.0f, z_.data());
    add_bias_rows(B_, C_, b2, z_.data());
    const double loss = cross_entropy(B_, C_, z_.data(), labels_.data(), z_.data());  // z_ becomes dz
    // backward, layer 2 (dh with the old W2 first)
    gemm(kind_, false, true, B_, H_, C_, 1.0f, z_.data(), W2, 0.0f, dh_.data());
    gemm(kind_, true, false, H_, C_, B_, 1.0f, h_.data(), z_.data(), beta, slot(2));
    sgd_apply(int64_t(H_) * C_, lr_, slot(2), W2);
    sum_rows(B_, C_, z_.data(), gb_.data());
    sgd_momentum(C_, t_, lr_, momentum_, gb_.data(), slot(3), b2);
    // layer 1; relu passes the gradient where its input was > 0 (0 at 0)
    for (size_t i = 0; i < dh_.size(); ++i) dh_[i] = h_[i] > 0.0f ? dh_[i] : 0.0f;
    gemm(kind_, true, false, D_, H_, B_, 1.0f, x_.data(), dh_.data(), beta, slot(0));
    sgd_apply(int64_t(D_) * H_, lr_, slot(0), W1);
    sum_rows(B_, H_, dh_.data(), gb_.data());
    sgd_momentum(H_, t_, lr_, momentum_, gb_.data(), slot(1), b1);
    return loss;
  }

  // The same forward and backward with the gradients kept (no update).
  double gradients() override {
    const float *W1 = param(0), *b1 = param(1), *W2 = param(2), *b2 = param(3);
    gemm(kind_, false, false, B_, H_, D_, 1.0f, x_.data(), W1, 0.0f, h_.data());
    add_bias_rows(B_, H_, b1, h_.data());
    note_relu_inputs(h_.data(), h_.size());
    for (float& v : h_) v = v > 0.0f ? v : 0.0f;
    gemm(kind_, false, false, B_, C_, H_, 1.0f, h_.data(), W2, 0.0f, z_.data());
    add_bias_rows(B_, C_, b2, z_.data());
    const double loss = cross_entropy(B_, C_, z_.data(), labels_.data(), z_.data());
    gemm(kind_, false, true, B_, H_, C_, 1.0f, z_.data(), W2, 0.0f, dh_.data());
    gemm(kind_, true, false, H_, C_, B_, 1.0f, h_.data(), z_.data(), 0.0f, grad(2));
    sum_rows(B_, C_, z_.data(), grad(3));
    for (size_t i = 0; i < dh_.size(); ++i) dh_[i] = h_[i] > 0.0f ? dh_[i] : 0.0f;
    gemm(kind_, true, false, D_, H_, B_, 1.0f, x_.data(), dh_.data(), 0.0f, grad(0));
    sum_rows(B_, H_, dh_.data(), grad(1));
    return loss;
  }

 private:
  Kind kind_;
  int B_, D_, H_, C_;
  std::vector<float> x_;
  std::vector<int32_t> labels_;
  float lr_, momentum_;
  std::vector<float> h_, z_, dh_, gb_;
};

}  // namespace

std::unique_ptr<Baseline> make_mnist_mlp(Kind kind, int B, int D, int H, int C, const std::vector<float>& x,
                                         const std::vector<int32_t>& labels, float lr, float momentum) {
  return std::make_unique<MnistMlp>(kind, B, D, H, C, x, labels, lr, momentum);
}

}  // namespace bench
