// Matrix products (loops and OpenBLAS), losses and optimizer updates for the
// hand-written baselines. Compiled with -O3 -march=native; the loops are the
// ones a careful engineer writes without a BLAS: i-k-j order so the innermost
// loop is a contiguous, vectorizable axpy, and a transposed copy for A @ B^T.
#include "kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <vector>

namespace bench {

namespace {

// C[M,N] (ldc N) = beta * C, with beta == 0 meaning "overwrite".
void scale(int M, int N, float beta, float* C) {
  const int64_t n = int64_t{M} * N;
  if (beta == 0.0f) std::fill(C, C + n, 0.0f);
  else if (beta != 1.0f)
    for (int64_t i = 0; i < n; ++i) C[i] *= beta;
}

// C += alpha * A @ B, with A read as a(i, k) = A[i*sai + k*sak]: covers A and
// A^T. i-k-j order: row i of C stays in cache while k runs, the j loop vectorizes.
void gemm_loops_nn(int M, int N, int K, float alpha, const float* __restrict A, int64_t sai, int64_t sak,
                   const float* __restrict B, float* __restrict C) {
  for (int i = 0; i < M; ++i) {
    float* __restrict c = C + int64_t{i} * N;
    for (int k = 0; k < K; ++k) {
      const float a = alpha * A[i * sai + k * sak];
      const float* __restrict b = B + int64_t{k} * N;
      for (int j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}

// The dot product with 16 independent partial sums (vectorizes without -ffast-math).
float dot(int n, const float* __restrict a, const float* __restrict b) {
  float acc[16] = {};
  int k = 0;
  for (; k + 16 <= n; k += 16)
    for (int u = 0; u < 16; ++u) acc[u] += a[k + u] * b[k + u];
  float s = 0;
  for (int u = 0; u < 16; ++u) s += acc[u];
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace

void gemm(Kind kind, bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
          float* C) {
  if (kind == Kind::Blas) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                ta ? M : K, B, tb ? K : N, beta, C, N);
    return;
  }
  scale(M, N, beta, C);
  const float* b = B;
  if (tb) {
    // B is [N,K]: copy it transposed once (4 bytes * N * K), then the same i-k-j loop.
    thread_local std::vector<float> bt;
    bt.resize(static_cast<size_t>(K) * N);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) bt[static_cast<size_t>(k) * N + n] = B[static_cast<size_t>(n) * K + k];
    b = bt.data();
  }
  if (ta) gemm_loops_nn(M, N, K, alpha, A, 1, M, b, C);
  else gemm_loops_nn(M, N, K, alpha, A, K, 1, b, C);
}

void gemv(Kind kind, bool ta, int M, int N, float alpha, const float* A, const float* x, float beta, float* y) {
  if (kind == Kind::Blas) {
    cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, alpha, A, N, x, 1, beta, y, 1);
    return;
  }
  if (!ta) {
    for (int i = 0; i < M; ++i) {
      float d = alpha * dot(N, A + int64_t{i} * N, x);
      y[i] = beta == 0.0f ? d : beta * y[i] + d;
    }
    return;
  }
  scale(1, N, beta, y);
  for (int i = 0; i < M; ++i) {
    const float a = alpha * x[i];
    const float* __restrict r = A + int64_t{i} * N;
    for (int j = 0; j < N; ++j) y[j] += a * r[j];
  }
}

void add_bias_rows(int R, int N, const float* __restrict bias, float* __restrict out) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < N; ++j) out[int64_t{r} * N + j] += bias[j];
}

void sum_rows(int R, int N, const float* __restrict g, float* __restrict out) {
  std::fill(out, out + N, 0.0f);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < N; ++j) out[j] += g[int64_t{r} * N + j];
}

void sgd_bias_update(int R, int N, float lr, const float* g, float* p) {
  thread_local std::vector<float> s;
  s.resize(static_cast<size_t>(N));
  sum_rows(R, N, g, s.data());
  for (int j = 0; j < N; ++j) p[j] -= lr * s[j];
}

double cross_entropy(int B, int C, const float* z, const int32_t* labels, float* dz) {
  double loss = 0;
  const float inv_b = 1.0f / static_cast<float>(B);
  for (int r = 0; r < B; ++r) {
    const float* zr = z + int64_t{r} * C;
    float* dr = dz + int64_t{r} * C;  // may be zr itself: read z_r[label] before overwriting
    const float z_label = zr[labels[r]];
    float m = zr[0];
    for (int j = 1; j < C; ++j) m = std::max(m, zr[j]);
    float s = 0;
    for (int j = 0; j < C; ++j) {
      dr[j] = std::exp(zr[j] - m);
      s += dr[j];
    }
    loss += static_cast<double>(m + std::log(s) - z_label);
    const float inv_s = 1.0f / s;
    for (int j = 0; j < C; ++j) dr[j] = dr[j] * inv_s * inv_b;
    dr[labels[r]] -= inv_b;
  }
  return loss / B;
}

void sgd_apply(int64_t n, float lr, const float* __restrict buf, float* __restrict p) {
  for (int64_t i = 0; i < n; ++i) p[i] -= lr * buf[i];
}

void sgd_momentum(int64_t n, int64_t t, float lr, float momentum, const float* __restrict g, float* __restrict buf,
                  float* __restrict p) {
  if (t == 1)
    for (int64_t i = 0; i < n; ++i) buf[i] = g[i];
  else
    for (int64_t i = 0; i < n; ++i) buf[i] = momentum * buf[i] + g[i];
  sgd_apply(n, lr, buf, p);
}

void adam(int64_t n, int64_t t, float lr, const float* __restrict g, float* __restrict m, float* __restrict v,
          float* __restrict p) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(b1, static_cast<double>(t))));
  const float inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(b2, static_cast<double>(t))));
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2), feps = static_cast<float>(eps);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = fb1 * m[i] + (1.0f - fb1) * g[i];
    v[i] = fb2 * v[i] + (1.0f - fb2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_bc2_sqrt + feps);
  }
}

void matmul(Kind kind, int M, int N, int K, const float* A, const float* B, float* C) {
  gemm(kind, false, false, M, N, K, 1.0f, A, B, 0.0f, C);
}

void blas_threads(int n) { openblas_set_num_threads(n); }

std::string stronger_blas_core() {
  // OpenBLAS 0.3.21's x86-64 kernel sets, oldest first, by the instructions
  // their sgemm needs; the cores it knows by other names run one of these.
  struct Level {
    const char* name;
    bool runs;
  };
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const Level levels[] = {
      {"Haswell", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
      {"SkylakeX", avx512},
      {"Cooperlake", avx512 && __builtin_cpu_supports("avx512bf16")},
  };
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  // What OpenBLAS chose, as a level: an unranked name is older than Haswell
  // (Prescott, Core2, Nehalem, Sandybridge, ...) unless it is an AMD core, which
  // OpenBLAS does know.
  const std::string chosen = lower(openblas_get_corename());
  int chosen_level = -1;
  for (int i = 0; i < static_cast<int>(std::size(levels)); ++i)
    if (chosen == lower(levels[i].name)) chosen_level = i;
  if (chosen_level < 0 && chosen.rfind("zen", 0) == 0) return "";
  int best = -1;
  for (int i = 0; i < static_cast<int>(std::size(levels)); ++i)
    if (levels[i].runs) best = i;
  return best > chosen_level ? levels[best].name : "";
}

std::string blas_config() {
  std::string s = openblas_get_config();
  return s + ", " + std::to_string(openblas_get_num_threads()) + " thread(s), core " + openblas_get_corename();
}

}  // namespace bench
