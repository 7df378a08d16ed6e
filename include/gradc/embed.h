// The C++ embedded front end: write a gradc model in C++ with expression
// templates, and differentiate scalar expressions at C++ compile time.
//
//   using namespace gradc::embed;
//   ModelBuilder m("xor");
//   Dim B = m.dim("B", 4);
//   Tensor<2> x = m.input("x", shape(B, 2));
//   auto W1 = m.param("W1", shape(2, 8), init::xavier_uniform);
//   Tensor<2> y = m.input("y", shape(B, 8));
//   auto h = m.let("h", tanh(x % W1));          // % is the matrix product (@)
//   m.loss(mse(h, y));
//   gradc::Model model = m.compile();           // same pipeline as a text model
//
// An expression's operation tree is its C++ type; a node holds its operands
// by value (leaves are a name pointer or a number) and allocates nothing. A
// statement (let, loss, metric, ...) flattens its expression into the
// ModelDef (gradc/embed_def.h), which Model::compile_def turns into the same
// syntax tree the text language parses into. Ranks are part of the types
// (Tensor<2>), so wrong arities and rank mismatches that are known statically
// do not compile; sizes, dtypes and broadcasting are checked by gradc, whose
// diagnostics point at the C++ line that wrote the expression.
//
// d(e, x) differentiates a scalar expression of Var<"x"> variables at C++
// compile time: the result is another expression type, to evaluate in C++
// (e.eval(x = 1.5)) or to use in a model. See docs/embedded.md.
#pragma once

#include "gradc/embed_builtins.h"  // the builtins of SPEC 2.4 as functions
#include "gradc/embed_def.h"       // the plain-data ModelDef
#include "gradc/embed_diff.h"      // d(e, x) at C++ compile time
#include "gradc/embed_expr.h"      // expression nodes, operators, arguments
#include "gradc/embed_model.h"     // ModelBuilder, fn, init::
