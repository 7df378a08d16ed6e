// A convolution's input gradient as a convolution of the output gradient.
//
// Differentiating a convolution (builtins.cpp: windows of the padded input,
// one product with the weight's rows) gives its input gradient as a product
// into the windows' gradient [C*K.., N*O..] (the size of the whole im2col
// matrix: 20 MB a step on W5's second layer) and a fold of it onto the padded
// input, which the padding's slices then crop. For stride 1 (any dilation)
// the same values are the "full" correlation of the output gradient with the
// flipped kernel, channels swapped:
//
//   dx[n, c, t..] = sum over o, r.. of W[o, c, K-1-r..] * gp[n, o, t + r*D ..]
//
// where gp is the output gradient padded by (K-1)*D - a before (a: where the
// crop starts) and enough after for the crop's size. That is one product with
// windows that fusion gathers from gp (implicit im2col, like the forward
// product), no matrix of windows and no fold. This pass rewrites each such
// chain (fold of a product of the transposed weight rows, and the slices
// that crop it) into that form.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

// Whether the model has a fold with stride 1 on every axis (the pass has
// something to look at; models without one do not list the pass).
bool has_stride1_fold(const ModelIR& m);

// The rewrite; `rewrites` (if given) receives the number of input gradients
// rewritten.
ModelIR rewrite_conv_input_grads(const ModelIR& m, size_t* rewrites = nullptr);

}  // namespace gradc
