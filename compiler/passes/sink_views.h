// Elementwise ops moved above a product's layout view.
//
// A convolution is one product [Och, N*P] (channels by images and output
// positions, builtins.cpp), then a view of it as [N, Och, P..]: a reshape
// that splits the columns, a transpose that swaps the channels and the
// images, a reshape that merges. The model's bias and activation come after
// the view, so the code generator makes the view a copy kernel and each
// elementwise op a kernel of its own over the NCHW maps (W5's first layer:
// 0.26 ms a step in the copy, the bias and the ReLU's mask).
//
// An elementwise op commutes with a view that only moves elements: for
//   e = op(view(x), c)
// with c a scalar or a broadcast along one axis of the view that is one
// whole axis of x (the bias: along the channels), this pass rewrites
//   e = view(op(x, c'))     c': c reshaped to lie along that axis of x
// and the same for the ops after it, whose operands are then views of the
// same shape. The ops then read the product's result in its own layout, so
// fusion makes them epilogues of the product (in registers), and the view
// moves to where the values leave the chain (the pooling's windows, the
// backward's masks). Only element-position-free ops move (unary, binary,
// comparisons, casts, where; never a random op, whose values depend on
// where the element is), and only views of a product's result or of an op
// this pass moved. Values are bit for bit those of the graph before.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

// Whether the model has an elementwise op on a product's layout view (the
// pass has something to look at; models without one do not list the pass).
bool has_product_views(const ModelIR& m);

// The rewrite; `rewrites` (if given) receives the number of ops moved.
ModelIR sink_elementwise_into_views(const ModelIR& m, size_t* rewrites = nullptr);

}  // namespace gradc
