// W4 wide_mlp by hand: h1 = relu(x @ W1 + b1), h2 = relu(h1 @ W2 + b2),
// z = h2 @ W3 + b3, loss = cross_entropy(z, label), adam (SPEC 2.5, PyTorch's
// defaults). Gradients go to scratch buffers, then one Adam pass per param.
#include "kernels.h"

namespace bench {
namespace {

class WideMlp final : public Baseline {
 public:
  WideMlp(Kind kind, int B, int D, int H, int C, const std::vector<float>& x, const std::vector<int32_t>& labels,
          float lr)
      : kind_(kind), B_(B), D_(D), H_(H), C_(C), x_(x), labels_(labels), lr_(lr), h1_(size_t(B) * H),
        h2_(size_t(B) * H), z_(size_t(B) * C), d1_(size_t(B) * H), d2_(size_t(B) * H) {
    add_param("W1", size_t(D) * H);
    add_param("b1", size_t(H));
    add_param("W2", size_t(H) * H);
    add_param("b2", size_t(H));
    add_param("W3", size_t(H) * C);
    add_param("b3", size_t(C));
    for (const Buffer& p : params_) {
      add_slot(p.data.size());  // exp_avg
      add_slot(p.data.size());  // exp_avg_sq
    }
  }

  double step() override {
    ++t_;
    const double loss = backward(false);
    for (size_t i = 0; i < params_.size(); ++i)
      adam(int64_t(params_[i].data.size()), t_, lr_, grad(i), slot(2 * i), slot(2 * i + 1), param(i));
    return loss;
  }

  // Forward and backward into the gradient buffers (step() then updates from them).
  double gradients() override { return backward(true); }

 private:
  // Forward and backward into grad(i); `margin`: note the ReLU inputs (not in the timed step).
  double backward(bool margin) {
    const float *W1 = param(0), *b1 = param(1), *W2 = param(2), *b2 = param(3), *W3 = param(4), *b3 = param(5);
    // forward
    gemm(kind_, false, false, B_, H_, D_, 1.0f, x_.data(), W1, 0.0f, h1_.data());
    add_bias_rows(B_, H_, b1, h1_.data());
    if (margin) note_relu_inputs(h1_.data(), h1_.size());
    for (float& v : h1_) v = v > 0.0f ? v : 0.0f;
    gemm(kind_, false, false, B_, H_, H_, 1.0f, h1_.data(), W2, 0.0f, h2_.data());
    add_bias_rows(B_, H_, b2, h2_.data());
    if (margin) note_relu_inputs(h2_.data(), h2_.size());
    for (float& v : h2_) v = v > 0.0f ? v : 0.0f;
    gemm(kind_, false, false, B_, C_, H_, 1.0f, h2_.data(), W3, 0.0f, z_.data());
    add_bias_rows(B_, C_, b3, z_.data());
    const double loss = cross_entropy(B_, C_, z_.data(), labels_.data(), z_.data());  // z_ becomes dz
    // backward
    gemm(kind_, true, false, H_, C_, B_, 1.0f, h2_.data(), z_.data(), 0.0f, grad(4));
    sum_rows(B_, C_, z_.data(), grad(5));
    gemm(kind_, false, true, B_, H_, C_, 1.0f, z_.data(), W3, 0.0f, d2_.data());
    for (size_t i = 0; i < d2_.size(); ++i) d2_[i] = h2_[i] > 0.0f ? d2_[i] : 0.0f;
    gemm(kind_, true, false, H_, H_, B_, 1.0f, h1_.data(), d2_.data(), 0.0f, grad(2));
    sum_rows(B_, H_, d2_.data(), grad(3));
    gemm(kind_, false, true, B_, H_, H_, 1.0f, d2_.data(), W2, 0.0f, d1_.data());
    for (size_t i = 0; i < d1_.size(); ++i) d1_[i] = h1_[i] > 0.0f ? d1_[i] : 0.0f;
    gemm(kind_, true, false, D_, H_, B_, 1.0f, x_.data(), d1_.data(), 0.0f, grad(0));
    sum_rows(B_, H_, d1_.data(), grad(1));
    return loss;
  }

  Kind kind_;
  int B_, D_, H_, C_;
  std::vector<float> x_;
  std::vector<int32_t> labels_;
  float lr_;
  std::vector<float> h1_, h2_, z_, d1_, d2_;
};

}  // namespace

std::unique_ptr<Baseline> make_wide_mlp(Kind kind, int B, int D, int H, int C, const std::vector<float>& x,
                                        const std::vector<int32_t>& labels, float lr) {
  return std::make_unique<WideMlp>(kind, B, D, H, C, x, labels, lr);
}

}  // namespace bench
