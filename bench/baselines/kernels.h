// The building blocks of the hand-written baselines: matrix products in two
// variants (plain loops, OpenBLAS), losses with their gradients (SPEC 2.4),
// and the optimizer updates (SPEC 2.5). Row-major float32 throughout.
#pragma once

#include <cstdint>

#include "baseline.h"

namespace bench {

// C[M,N] = alpha * op(A) @ op(B) + beta * C, BLAS semantics (beta = 0 ignores
// C's old contents). op(A) is [M,K]: A is [M,K], or [K,M] when ta. op(B) is
// [K,N]: B is [K,N], or [N,K] when tb.
void gemm(Kind kind, bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
          float* C);
// y = alpha * op(A) @ x + beta * y for A [M,N]: op(A) = A (x [N], y [M]) or A^T (x [M], y [N]).
void gemv(Kind kind, bool ta, int M, int N, float alpha, const float* A, const float* x, float beta, float* y);

// out[r,:] += bias for every row of out [R,N].
void add_bias_rows(int R, int N, const float* bias, float* out);
// p[j] -= lr * sum_r g[r,j] for g [R,N] (the SGD update of a bias from its row gradients).
void sgd_bias_update(int R, int N, float lr, const float* g, float* p);
// sum over rows: out[j] = sum_r g[r,j].
void sum_rows(int R, int N, const float* g, float* out);

// cross_entropy(logits [B,C], labels) = mean_r (logsumexp(z_r) - z_r[label_r]);
// writes d loss / d logits = (softmax(z_r) - onehot(label_r)) / B into dz (which may be z).
double cross_entropy(int B, int C, const float* z, const int32_t* labels, float* dz);

// SGD with momentum (dampening 0, no nesterov, no weight decay), buf holding
// g already combined (buf = g at t=1, momentum*buf + g after): p -= lr * buf.
void sgd_apply(int64_t n, float lr, const float* buf, float* p);
// buf = g (t == 1) or momentum * buf + g, then p -= lr * buf.
void sgd_momentum(int64_t n, int64_t t, float lr, float momentum, const float* g, float* buf, float* p);
// Adam (SPEC 2.5; beta1 0.9, beta2 0.999, eps 1e-8, no weight decay) at step t >= 1:
// m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
void adam(int64_t n, int64_t t, float lr, const float* g, float* m, float* v, float* p);

}  // namespace bench
