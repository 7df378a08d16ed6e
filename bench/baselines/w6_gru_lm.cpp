// W6 gru_lm by hand, the GRU character language model of bench/models/w6_gru_lm.grad:
//   x_t = table[ids[t]]                                  [B, E]
//   gi = x_t @ W_ih^T + b_ih,  gh = h @ W_hh^T + b_hh     [B, 3H], gates r, z, n (torch.nn.GRU)
//   r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
//   h_t = (1 - z) * n + z * h_{t-1},  h_{-1} = 0
//   logits = hs @ Wo + bo over all T * B positions, cross_entropy with the targets, adam.
//
// Written the way a hand-tuned RNN (cuDNN's, PyTorch's CPU GRU) is: the input
// projections of all T steps are ONE product [T*B, E] x [E, 3H] before the
// recurrence, which then does one [B, H] x [H, 3H] product per step and keeps
// r, z, n and gh_n (what back-propagation through time needs). Backward runs
// the steps in reverse with one [B, 3H] x [3H, H] product per step for the
// carry's gradient; the gate gradients of all steps are kept, so the weight
// gradients are each ONE product over all T*B rows after the loop
// (dW_hh = dGH^T @ h_{t-1}, dW_ih = dGI^T @ x), as are the embedding's input
// gradient and the classifier's products. The table's gradient is a
// scatter-add of the rows. Then one Adam pass per param.
//
// The plain variant's products are kernels.cpp's loops; their A @ B^T copies B
// transposed on every call, so the per-step products x W^T read a transposed
// copy of W_ih and W_hh made once per train step instead (what an engineer
// without a BLAS does); the OpenBLAS variant passes CblasTrans.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels.h"

namespace bench {
namespace {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

class GruLm final : public Baseline {
 public:
  GruLm(Kind kind, int T, int B, int V, int E, int H, const std::vector<int32_t>& ids,
        const std::vector<int32_t>& targets, float lr)
      : kind_(kind), T_(T), B_(B), V_(V), E_(E), H_(H), G_(3 * H), lr_(lr), ids_(ids), targets_(targets) {
    const size_t TB = size_t(T) * B, G = size_t(G_);
    if (ids.size() != TB || targets.size() != TB) throw std::runtime_error("gru_lm: ids and targets must be [T, B]");
    add_param("table", size_t(V) * E);
    add_param("W_ih", G * E);
    add_param("W_hh", G * H);
    add_param("b_ih", G);
    add_param("b_hh", G);
    add_param("Wo", size_t(H) * V);
    add_param("bo", size_t(V));
    for (const Buffer& p : params_) {
      add_slot(p.data.size());  // exp_avg
      add_slot(p.data.size());  // exp_avg_sq
    }
    x_.resize(TB * E);
    gi_.resize(TB * G);
    hs_.resize((TB + size_t(B)) * H);  // h_{-1} = 0, then h_0 .. h_{T-1}
    r_.resize(TB * H);
    z_.resize(TB * H);
    n_.resize(TB * H);
    ghn_.resize(TB * H);
    gh_.resize(size_t(B) * G);
    logits_.resize(TB * V);
    dhs_.resize(TB * H);
    dh_.resize(size_t(B) * H);
    dgi_.resize(TB * G);
    dgh_.resize(TB * G);
    dx_.resize(TB * E);
    if (kind == Kind::Loops) {
      wiht_.resize(G * E);
      whht_.resize(G * H);
    }
  }

  double step() override {
    ++t_;
    const double loss = backward();
    for (size_t i = 0; i < params_.size(); ++i)
      adam(int64_t(params_[i].data.size()), t_, lr_, grad(i), slot(2 * i), slot(2 * i + 1), param(i));
    return loss;
  }

  double gradients() override { return backward(); }

 private:
  // C [M, G] = A [M, K] @ W^T for W [G, K] (a weight in torch.nn.GRU's layout);
  // `wt` is W^T [K, G], made once per step, for the loops.
  void times_wt(int M, int K, const float* A, const float* W, const float* wt, float* C) {
    if (kind_ == Kind::Blas) gemm(kind_, false, true, M, G_, K, 1.0f, A, W, 0.0f, C);
    else gemm(kind_, false, false, M, G_, K, 1.0f, A, wt, 0.0f, C);
  }

  static void transpose(int R, int C, const float* a, float* at) {
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j) at[size_t(j) * R + i] = a[size_t(i) * C + j];
  }

  // Forward and backward into grad(i).
  double backward() {
    const int T = T_, B = B_, V = V_, E = E_, H = H_, G = G_, TB = T * B;
    float *table = param(0), *W_ih = param(1), *W_hh = param(2), *b_ih = param(3), *b_hh = param(4),
          *Wo = param(5), *bo = param(6);
    if (kind_ == Kind::Loops) {
      transpose(G, E, W_ih, wiht_.data());
      transpose(G, H, W_hh, whht_.data());
    }
    // embedding, then the input projections of every step at once
    for (int i = 0; i < TB; ++i) std::copy_n(table + size_t(ids_[size_t(i)]) * E, E, &x_[size_t(i) * E]);
    times_wt(TB, E, x_.data(), W_ih, wiht_.data(), gi_.data());
    add_bias_rows(TB, G, b_ih, gi_.data());
    // the recurrence
    std::fill(hs_.begin(), hs_.begin() + size_t(B) * H, 0.0f);
    for (int t = 0; t < T; ++t) {
      const float* hp = &hs_[size_t(t) * B * H];
      float* hn = &hs_[size_t(t + 1) * B * H];
      times_wt(B, H, hp, W_hh, whht_.data(), gh_.data());
      const size_t o = size_t(t) * B * H;
      for (int b = 0; b < B; ++b) {
        const float* gi = &gi_[(size_t(t) * B + b) * G];
        const float* gh = &gh_[size_t(b) * G];
        const size_t q = o + size_t(b) * H;
        for (int j = 0; j < H; ++j) {
          const float r = sigmoid(gi[j] + gh[j] + b_hh[j]);
          const float z = sigmoid(gi[H + j] + gh[H + j] + b_hh[H + j]);
          const float ghn = gh[2 * H + j] + b_hh[2 * H + j];
          const float n = std::tanh(gi[2 * H + j] + r * ghn);
          r_[q + j] = r, z_[q + j] = z, n_[q + j] = n, ghn_[q + j] = ghn;
          hn[size_t(b) * H + j] = (1.0f - z) * n + z * hp[size_t(b) * H + j];
        }
      }
    }
    // classifier and loss over all T*B positions
    const float* hs = &hs_[size_t(B) * H];  // h_0 .. h_{T-1}: [T*B, H]
    gemm(kind_, false, false, TB, V, H, 1.0f, hs, Wo, 0.0f, logits_.data());
    add_bias_rows(TB, V, bo, logits_.data());
    const double loss = cross_entropy(TB, V, logits_.data(), targets_.data(), logits_.data());  // logits_ becomes dz
    gemm(kind_, true, false, H, V, TB, 1.0f, hs, logits_.data(), 0.0f, grad(5));
    sum_rows(TB, V, logits_.data(), grad(6));
    gemm(kind_, false, true, TB, H, V, 1.0f, logits_.data(), Wo, 0.0f, dhs_.data());
    // back-propagation through time; dh carries d loss / d h_{t-1} to the step before
    std::fill(dh_.begin(), dh_.end(), 0.0f);
    for (int t = T - 1; t >= 0; --t) {
      const float* hp = &hs_[size_t(t) * B * H];
      const size_t o = size_t(t) * B * H;
      for (int b = 0; b < B; ++b) {
        const size_t q = o + size_t(b) * H;
        float* dgi = &dgi_[(size_t(t) * B + b) * G];
        float* dgh = &dgh_[(size_t(t) * B + b) * G];
        float* dh = &dh_[size_t(b) * H];
        for (int j = 0; j < H; ++j) {
          const float d = dh[j] + dhs_[q + j];
          const float r = r_[q + j], z = z_[q + j], n = n_[q + j];
          const float dan = d * (1.0f - z) * (1.0f - n * n);
          const float dar = dan * ghn_[q + j] * r * (1.0f - r);
          const float daz = d * (hp[size_t(b) * H + j] - n) * z * (1.0f - z);
          dgi[j] = dar, dgi[H + j] = daz, dgi[2 * H + j] = dan;
          dgh[j] = dar, dgh[H + j] = daz, dgh[2 * H + j] = dan * r;
          dh[j] = d * z;  // the direct path; the products' share is added next
        }
      }
      // dh += dgh_t [B, 3H] @ W_hh [3H, H]
      if (t > 0) gemm(kind_, false, false, B, H, G, 1.0f, &dgh_[size_t(t) * B * G], W_hh, 1.0f, dh_.data());
    }
    // the weight gradients, each one product over all T*B rows
    gemm(kind_, true, false, G, H, TB, 1.0f, dgh_.data(), hs_.data(), 0.0f, grad(2));  // h_{t-1} rows
    sum_rows(TB, G, dgh_.data(), grad(4));
    gemm(kind_, true, false, G, E, TB, 1.0f, dgi_.data(), x_.data(), 0.0f, grad(1));
    sum_rows(TB, G, dgi_.data(), grad(3));
    // the embedding: dx = dgi @ W_ih, scatter-added into the table's rows
    gemm(kind_, false, false, TB, E, G, 1.0f, dgi_.data(), W_ih, 0.0f, dx_.data());
    float* dtable = grad(0);
    std::fill(dtable, dtable + size_t(V) * E, 0.0f);
    for (int i = 0; i < TB; ++i) {
      float* row = dtable + size_t(ids_[size_t(i)]) * E;
      const float* d = &dx_[size_t(i) * E];
      for (int k = 0; k < E; ++k) row[k] += d[k];
    }
    return loss;
  }

  Kind kind_;
  int T_, B_, V_, E_, H_, G_;
  float lr_;
  std::vector<int32_t> ids_, targets_;
  std::vector<float> x_, gi_, hs_, r_, z_, n_, ghn_, gh_, logits_;
  std::vector<float> dhs_, dh_, dgi_, dgh_, dx_;
  std::vector<float> wiht_, whht_;  // the loops' W_ih^T, W_hh^T
};

}  // namespace

std::unique_ptr<Baseline> make_gru_lm(Kind kind, int T, int B, int V, int E, int H, const std::vector<int32_t>& ids,
                                      const std::vector<int32_t>& targets, float lr) {
  return std::make_unique<GruLm>(kind, T, B, V, E, H, ids, targets, lr);
}

}  // namespace bench
