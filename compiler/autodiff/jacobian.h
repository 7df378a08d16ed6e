// The full Jacobian of a tensor with respect to a tensor, at compile time.
//
// Both modes give one slice of the Jacobian per evaluation: forward mode a
// column (the directional derivative along one basis direction of x),
// reverse mode a row (the gradient of one element of e). So the Jacobian
// costs numel(x) forward evaluations or numel(e) reverse ones, and the cheaper
// mode is the one with fewer slices: forward for a "tall" Jacobian (few
// inputs, many outputs), reverse for a "wide" one, as jax's jacfwd and jacrev
// are recommended. The slices are ordinary graph, stacked with reshape and
// concat, so the Jacobian can be differentiated again in either mode.
#pragma once

#include <cstdint>

#include "compiler/ir/builder.h"

namespace gradc {

enum class Accumulation { Forward, Reverse };

// The largest Jacobian built, in elements (numel(e) * numel(x)). It also
// bounds the evaluations: the smaller of two counts whose product is at most
// 65536 is at most 256.
inline constexpr int64_t kMaxJacobianElements = 65536;

// Forward accumulation when x has no more elements than e, reverse otherwise
// (a tie goes to forward mode, whose tangents need no reverse sweep).
Accumulation jacobian_accumulation(int64_t e_elements, int64_t x_elements);

// d e / d x of shape e.shape ++ x.shape and e's dtype: J[i..., j...] =
// d e[i...] / d x[j...] (as torch.autograd.functional.jacobian). e and x
// must be float; zeros where e does not depend on x.
NodeId jacobian(Builder& b, NodeId e, NodeId x, Accumulation mode);

}  // namespace gradc
