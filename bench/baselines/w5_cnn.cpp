// W5 cnn by hand, the Fashion-MNIST CNN of bench/models/w5_cnn.grad:
//   a1 = max_pool2d(relu(conv2d(x / 255, K1, padding=P1) + c1), 2)
//   a2 = max_pool2d(relu(conv2d(a1, K2, padding=P2) + c2), 2)
//   h  = relu(flatten(a2) @ W3 + b3),  z = h @ W4 + b4
//   loss = cross_entropy(z, label), adam (SPEC 2.5, PyTorch's defaults).
//
// The convolutions are im2col + one matrix product over the whole batch, the
// way frameworks without a direct convolution do it: the columns of all B
// images side by side ([C*KH*KW, B*OH*OW]), so each product is one large
// gemm; the weight gradient is dY @ cols^T and the input gradient col2im of
// K^T @ dY. Inside, activations are kept channel-major ("CNHW": [C, B, H, W])
// because that is the layout the products produce; flatten gathers them into
// PyTorch's [B, C*H*W] order for W3. Max pooling records the first maximum of
// each window (SPEC 2.7) and routes the gradient there.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.h"

namespace bench {
namespace {

// One convolution layer's geometry: input [C, B, H, W] (CNHW), square kernel
// K, stride 1, zero padding P, output [O, B, OH, OW].
struct Conv {
  int C, O, K, P, H, W, OH, OW;
  Conv(int c, int o, int k, int p, int h, int w)
      : C(c), O(o), K(k), P(p), H(h), W(w), OH(h + 2 * p - k + 1), OW(w + 2 * p - k + 1) {}
  int rows() const { return C * K * K; }  // of the columns matrix (and of K^T)
};

// cols[(c*K + kh)*K + kw, (b*OH + oh)*OW + ow] = in[c, b, oh + kh - P, ow + kw - P] (0 outside).
void im2col(const Conv& v, int B, const float* in, float* cols) {
  const int64_t n = int64_t(B) * v.OH * v.OW;
  for (int c = 0; c < v.C; ++c)
    for (int kh = 0; kh < v.K; ++kh)
      for (int kw = 0; kw < v.K; ++kw) {
        float* row = cols + ((int64_t(c) * v.K + kh) * v.K + kw) * n;
        for (int b = 0; b < B; ++b) {
          const float* plane = in + (int64_t(c) * B + b) * v.H * v.W;
          for (int oh = 0; oh < v.OH; ++oh) {
            const int ih = oh + kh - v.P;
            float* out = row + (int64_t(b) * v.OH + oh) * v.OW;
            if (ih < 0 || ih >= v.H) {
              std::fill(out, out + v.OW, 0.0f);
              continue;
            }
            for (int ow = 0; ow < v.OW; ++ow) {
              const int iw = ow + kw - v.P;
              out[ow] = iw >= 0 && iw < v.W ? plane[ih * v.W + iw] : 0.0f;
            }
          }
        }
      }
}

// The adjoint of im2col: din[c, b, ih, iw] = sum of the column entries that read it.
void col2im(const Conv& v, int B, const float* cols, float* din) {
  const int64_t n = int64_t(B) * v.OH * v.OW;
  std::fill(din, din + int64_t(v.C) * B * v.H * v.W, 0.0f);
  for (int c = 0; c < v.C; ++c)
    for (int kh = 0; kh < v.K; ++kh)
      for (int kw = 0; kw < v.K; ++kw) {
        const float* row = cols + ((int64_t(c) * v.K + kh) * v.K + kw) * n;
        for (int b = 0; b < B; ++b) {
          float* plane = din + (int64_t(c) * B + b) * v.H * v.W;
          for (int oh = 0; oh < v.OH; ++oh) {
            const int ih = oh + kh - v.P;
            if (ih < 0 || ih >= v.H) continue;
            const float* g = row + (int64_t(b) * v.OH + oh) * v.OW;
            const int lo = std::max(0, v.P - kw), hi = std::min(v.OW, v.W + v.P - kw);
            for (int ow = lo; ow < hi; ++ow) plane[ih * v.W + ow + kw - v.P] += g[ow];
          }
        }
      }
}

// y[o, :] = relu(y[o, :] + bias[o]) over n = B*OH*OW columns.
void bias_relu(int O, int64_t n, const float* bias, float* y) {
  for (int o = 0; o < O; ++o)
    for (int64_t i = 0; i < n; ++i) y[o * n + i] = std::max(y[o * n + i] + bias[o], 0.0f);
}

// 2x2 max pooling with stride 2 of planes [CB, H, W] (H, W even); `arg` keeps
// the index in the plane of each window's first maximum.
void max_pool(int64_t planes, int H, int W, const float* in, float* out, int32_t* arg) {
  const int OH = H / 2, OW = W / 2;
  for (int64_t p = 0; p < planes; ++p) {
    const float* x = in + p * H * W;
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        int best = 2 * oh * W + 2 * ow;
        for (int dh = 0; dh < 2; ++dh)
          for (int dw = 0; dw < 2; ++dw) {
            int i = (2 * oh + dh) * W + 2 * ow + dw;
            if (x[i] > x[best]) best = i;
          }
        out[p * OH * OW + oh * OW + ow] = x[best];
        arg[p * OH * OW + oh * OW + ow] = best;
      }
  }
}

// The gradient of max_pool, times the ReLU before it (0 where the pooled value is 0).
void max_pool_relu_backward(int64_t planes, int H, int W, const float* pooled, const int32_t* arg,
                            const float* dout, float* din) {
  const int64_t m = int64_t(H / 2) * (W / 2);
  std::fill(din, din + planes * H * W, 0.0f);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < m; ++i)
      if (pooled[p * m + i] > 0.0f) din[p * H * W + arg[p * m + i]] = dout[p * m + i];
}

class Cnn final : public Baseline {
 public:
  Cnn(Kind kind, int B, int C1, int C2, int H, int N, const std::vector<float>& x, const std::vector<int32_t>& labels,
      float lr)
      : kind_(kind), B_(B), H_(H), N_(N), lr_(lr), l1_(1, C1, 5, 2, 28, 28), l2_(C1, C2, 5, 2, 14, 14),
        F_(C2 * 7 * 7), labels_(labels), x_(x.size()) {
    for (size_t i = 0; i < x.size(); ++i) x_[i] = x[i] / 255.0f;  // [B, 1, 28, 28] is [1, B, 28, 28] as CNHW
    add_param("K1", size_t(l1_.O) * l1_.rows());
    add_param("c1", size_t(l1_.O));
    add_param("K2", size_t(l2_.O) * l2_.rows());
    add_param("c2", size_t(l2_.O));
    add_param("W3", size_t(F_) * H_);
    add_param("b3", size_t(H_));
    add_param("W4", size_t(H_) * N_);
    add_param("b4", size_t(N_));
    for (const Buffer& p : params_) {
      add_slot(p.data.size());  // exp_avg
      add_slot(p.data.size());  // exp_avg_sq
    }
    const int64_t n1 = int64_t(B) * 28 * 28, n2 = int64_t(B) * 14 * 14;
    cols1_.resize(size_t(l1_.rows() * n1));
    cols2_.resize(size_t(l2_.rows() * n2));
    y1_.resize(size_t(l1_.O * n1));
    a1_.resize(size_t(l1_.O * n2));
    arg1_.resize(a1_.size());
    y2_.resize(size_t(l2_.O * n2));
    a2_.resize(size_t(l2_.O * n2 / 4));
    arg2_.resize(a2_.size());
    f_.resize(size_t(B) * F_);
    h_.resize(size_t(B) * H_);
    z_.resize(size_t(B) * N_);
    dh_.resize(h_.size());
    df_.resize(f_.size());
    da2_.resize(a2_.size());
    dy2_.resize(y2_.size());
    da1_.resize(a1_.size());
    dy1_.resize(y1_.size());
  }

  double step() override {
    ++t_;
    const double loss = backward(false);
    for (size_t i = 0; i < params_.size(); ++i)
      adam(int64_t(params_[i].data.size()), t_, lr_, grad(i), slot(2 * i), slot(2 * i + 1), param(i));
    return loss;
  }

  double gradients() override { return backward(true); }

 private:
  // Forward and backward into grad(i); `margin`: note the ReLU inputs (not in the timed step).
  double backward(bool margin) {
    const int B = B_;
    const int64_t n1 = int64_t(B) * 28 * 28, n2 = int64_t(B) * 14 * 14;
    // conv 1: y1 [C1, B*28*28] = K1 [C1, 25] @ cols1 [25, B*28*28]
    im2col(l1_, B, x_.data(), cols1_.data());
    gemm(kind_, false, false, l1_.O, int(n1), l1_.rows(), 1.0f, param(0), cols1_.data(), 0.0f, y1_.data());
    if (margin) note_biased(l1_.O, n1, param(1), y1_.data());
    bias_relu(l1_.O, n1, param(1), y1_.data());
    max_pool(int64_t(l1_.O) * B, 28, 28, y1_.data(), a1_.data(), arg1_.data());
    // conv 2
    im2col(l2_, B, a1_.data(), cols2_.data());
    gemm(kind_, false, false, l2_.O, int(n2), l2_.rows(), 1.0f, param(2), cols2_.data(), 0.0f, y2_.data());
    if (margin) note_biased(l2_.O, n2, param(3), y2_.data());
    bias_relu(l2_.O, n2, param(3), y2_.data());
    max_pool(int64_t(l2_.O) * B, 14, 14, y2_.data(), a2_.data(), arg2_.data());
    // flatten: f[b, c*49 + s] = a2[c, b, s]
    for (int c = 0; c < l2_.O; ++c)
      for (int b = 0; b < B; ++b)
        std::copy_n(&a2_[(size_t(c) * B + b) * 49], 49, &f_[size_t(b) * F_ + size_t(c) * 49]);
    // classifier
    gemm(kind_, false, false, B, H_, F_, 1.0f, f_.data(), param(4), 0.0f, h_.data());
    add_bias_rows(B, H_, param(5), h_.data());
    if (margin) note_relu_inputs(h_.data(), h_.size());
    for (float& v : h_) v = std::max(v, 0.0f);
    gemm(kind_, false, false, B, N_, H_, 1.0f, h_.data(), param(6), 0.0f, z_.data());
    add_bias_rows(B, N_, param(7), z_.data());
    const double loss = cross_entropy(B, N_, z_.data(), labels_.data(), z_.data());  // z_ becomes dz
    // backward through the classifier
    gemm(kind_, true, false, H_, N_, B, 1.0f, h_.data(), z_.data(), 0.0f, grad(6));
    sum_rows(B, N_, z_.data(), grad(7));
    gemm(kind_, false, true, B, H_, N_, 1.0f, z_.data(), param(6), 0.0f, dh_.data());
    for (size_t i = 0; i < dh_.size(); ++i) dh_[i] = h_[i] > 0.0f ? dh_[i] : 0.0f;
    gemm(kind_, true, false, F_, H_, B, 1.0f, f_.data(), dh_.data(), 0.0f, grad(4));
    sum_rows(B, H_, dh_.data(), grad(5));
    gemm(kind_, false, true, B, F_, H_, 1.0f, dh_.data(), param(4), 0.0f, df_.data());
    for (int c = 0; c < l2_.O; ++c)
      for (int b = 0; b < B; ++b)
        std::copy_n(&df_[size_t(b) * F_ + size_t(c) * 49], 49, &da2_[(size_t(c) * B + b) * 49]);
    // conv 2: dY2, then dK2 = dY2 @ cols2^T, dc2 = row sums, da1 = col2im(K2^T @ dY2)
    max_pool_relu_backward(int64_t(l2_.O) * B, 14, 14, a2_.data(), arg2_.data(), da2_.data(), dy2_.data());
    gemm(kind_, false, true, l2_.O, l2_.rows(), int(n2), 1.0f, dy2_.data(), cols2_.data(), 0.0f, grad(2));
    row_sums(l2_.O, n2, dy2_.data(), grad(3));
    gemm(kind_, true, false, l2_.rows(), int(n2), l2_.O, 1.0f, param(2), dy2_.data(), 0.0f, cols2_.data());
    col2im(l2_, B, cols2_.data(), da1_.data());
    // conv 1 (the input needs no gradient)
    max_pool_relu_backward(int64_t(l1_.O) * B, 28, 28, a1_.data(), arg1_.data(), da1_.data(), dy1_.data());
    gemm(kind_, false, true, l1_.O, l1_.rows(), int(n1), 1.0f, dy1_.data(), cols1_.data(), 0.0f, grad(0));
    row_sums(l1_.O, n1, dy1_.data(), grad(1));
    return loss;
  }

  // The ReLU inputs y + bias of a convolution (before bias_relu adds the bias).
  void note_biased(int O, int64_t n, const float* bias, const float* y) {
    std::vector<float> z(size_t(O * n));
    for (int o = 0; o < O; ++o)
      for (int64_t i = 0; i < n; ++i) z[size_t(o * n + i)] = y[o * n + i] + bias[o];
    note_relu_inputs(z.data(), z.size());
  }

  // out[o] = sum_i g[o, i], in order.
  static void row_sums(int O, int64_t n, const float* g, float* out) {
    for (int o = 0; o < O; ++o) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += g[o * n + i];
      out[o] = float(s);
    }
  }

  Kind kind_;
  int B_, H_, N_;
  float lr_;
  Conv l1_, l2_;
  int F_;
  std::vector<int32_t> labels_;
  std::vector<float> x_, cols1_, cols2_, y1_, a1_, y2_, a2_, f_, h_, z_;
  std::vector<int32_t> arg1_, arg2_;
  std::vector<float> dh_, df_, da2_, dy2_, da1_, dy1_;
};

}  // namespace

std::unique_ptr<Baseline> make_cnn(Kind kind, int B, int C1, int C2, int H, int N, const std::vector<float>& x,
                                   const std::vector<int32_t>& labels, float lr) {
  return std::make_unique<Cnn>(kind, B, C1, C2, H, N, x, labels, lr);
}

}  // namespace bench
