// Hand-written C++ train steps that the benchmark suite compares gradc with.
//
// Each workload is written out by hand (forward, backward, optimizer update)
// exactly as SPEC 2.4/2.5 define its loss and optimizer, in two variants that
// differ only in how matrix products are done: plain loops (Kind::Loops) or
// OpenBLAS (Kind::Blas, cblas_sgemm / cblas_sgemv). Nothing here includes or
// links gradc: the baselines are independent of the code they measure.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

enum class Kind { Loops, Blas };

// A named float buffer: a param (named as in the .grad model) or an optimizer slot.
struct Buffer {
  std::string name;
  std::vector<float> data;
};

// One workload's train step on a fixed batch. Not thread-safe.
class Baseline {
 public:
  virtual ~Baseline() = default;

  // One train step: forward, backward, optimizer update in place; returns
  // the loss before the update (like gradc::Session::train_step).
  virtual double step() = 0;

  // The loss and d loss / d param at the current params on the batch, into
  // grads() (named and ordered as params()); no update, no change of state.
  // The check compares these with gradc's Session::grad: unlike params after
  // optimizer steps, gradients are well conditioned (see bench/README.md).
  double compute_grads();
  const std::vector<Buffer>& grads() const { return grads_; }
  // A wrong baseline, to test the check itself: compute_grads() adds
  // `rel * max|g|` to one element (the middle one) of every gradient.
  void set_grad_error(double rel) { grad_error_ = rel; }
  // After compute_grads(): the smallest |z| / max |z| over the ReLU inputs z
  // of each layer (1 without ReLUs). A ReLU whose input is within rounding of
  // 0 opens or closes by chance, and its whole row of the gradient with it.
  double relu_margin() const { return relu_margin_; }

  // The params by name, in the model's order; writable.
  std::vector<Buffer>& params() { return params_; }
  // Sets every param from `from` (matched by name; all must be present with
  // the right size), zeroes the optimizer state and the step counter.
  void set_params(const std::vector<Buffer>& from);

  // Saves / restores params, optimizer state and step counter (the timing
  // loop restarts every sample from the same state).
  void snapshot();
  void restore();

 protected:
  // Registers a param / an optimizer slot (zero at the start); returns its index.
  size_t add_param(std::string name, size_t n);
  size_t add_slot(size_t n);
  float* param(size_t i) { return params_[i].data.data(); }
  float* grad(size_t i) { return grads_[i].data.data(); }
  // compute_grads() without the test perturbation: fills grad(i) for every param.
  virtual double gradients() = 0;
  // Folds a layer's ReLU inputs z[0..n) into relu_margin() (call before the ReLU).
  void note_relu_inputs(const float* z, size_t n);
  double relu_margin_ = 1;
  float* slot(size_t i) { return slots_[i].data(); }

  std::vector<Buffer> params_;
  std::vector<std::vector<float>> slots_;
  std::vector<Buffer> grads_;  // one per param (add_param), same name and size
  int64_t t_ = 0;  // optimizer steps taken

 private:
  std::vector<Buffer> saved_params_;
  std::vector<std::vector<float>> saved_slots_;
  int64_t saved_t_ = 0;
  double grad_error_ = 0;
};

// W1 xor: 2-8-1, tanh, sigmoid, mse, sgd(lr) ; x [4,2], y [4,1].
std::unique_ptr<Baseline> make_xor(Kind kind, const std::vector<float>& x, const std::vector<float>& y, float lr);
// W2 logreg: x [B,D] @ w [D] + b, bce_with_logits, sgd(lr); y [B].
std::unique_ptr<Baseline> make_logreg(Kind kind, int B, int D, const std::vector<float>& x,
                                      const std::vector<float>& y, float lr);
// W3 mnist_mlp: D-H-C, relu, cross_entropy (i32 labels), sgd(lr, momentum).
std::unique_ptr<Baseline> make_mnist_mlp(Kind kind, int B, int D, int H, int C, const std::vector<float>& x,
                                         const std::vector<int32_t>& labels, float lr, float momentum);
// W4 wide_mlp: D-H-H-C, relu, cross_entropy (i32 labels), adam(lr) with PyTorch's defaults.
std::unique_ptr<Baseline> make_wide_mlp(Kind kind, int B, int D, int H, int C, const std::vector<float>& x,
                                        const std::vector<int32_t>& labels, float lr);

// W5 cnn: conv 5x5 (1 -> C1, padding 2), relu, max_pool 2, conv 5x5 (C1 -> C2, padding 2), relu,
// max_pool 2, flatten, C2*7*7-H-N relu MLP, cross_entropy, adam(lr); x [B, 1, 28, 28] pixels 0..255.
std::unique_ptr<Baseline> make_cnn(Kind kind, int B, int C1, int C2, int H, int N, const std::vector<float>& x,
                                   const std::vector<int32_t>& labels, float lr);

// W6 gru_lm: ids [T, B] -> embedding table [V, E] -> one GRU layer of H (torch.nn.GRU's equations
// and layout: W_ih [3H, E], W_hh [3H, H], b_ih, b_hh [3H]) from h = 0 -> Wo [H, V] + bo on every
// step -> cross_entropy over the T*B targets, adam(lr).
std::unique_ptr<Baseline> make_gru_lm(Kind kind, int T, int B, int V, int E, int H, const std::vector<int32_t>& ids,
                                      const std::vector<int32_t>& targets, float lr);

// C[M,N] = A[M,K] @ B[K,N] alone (the GEMM line), with either kind.
void matmul(Kind kind, int M, int N, int K, const float* A, const float* B, float* C);

// The core's single-precision peak: FMAs on registers only, the best of
// repeated runs for `seconds`; `isa` names the instructions (AVX-512 or AVX2).
struct FmaPeak {
  double gflops = 0;
  const char* isa = "";
  float sink = 0;  // the loop's result, so that it is not optimized away
};
FmaPeak measure_fma_peak(double seconds);

// One fixed block of the same register-only FMAs (6 MFLOP with AVX-512), to time
// as a runner beside the products: the peak under the same conditions as
// they ran (a virtual core's clock moves between samples, and the best of
// many runs catches its fastest moments). Returns the loop's result.
float fma_peak_block();
double fma_peak_block_flops();

// OpenBLAS on n threads until set again: 1 for the suite (it measures one
// core), 2 for the thread-scaling lines.
void blas_threads(int n);
// The OpenBLAS build's description (core, threading), for the report.
std::string blas_config();
// The OPENBLAS_CORETYPE of the newest kernels this core runs that are newer
// than those OpenBLAS chose, or "" when it chose them (or newer, or a core
// this list does not rank). OpenBLAS picks its kernels from the CPU's family
// and model numbers and gives a core it does not know, such as a virtual
// machine's Xeon that hides its model, the kernels of an old one.
std::string stronger_blas_core();

}  // namespace bench
