// Deterministic printouts of a model's graph: text (`gradc dump --stage graph`)
// and Graphviz DOT (`--format dot`). Only nodes that reach an output, metric
// or the loss are shown (plus every input and param), numbered densely in
// topological order, so printouts are stable under unrelated edits.
#pragma once

#include <string>

#include "compiler/ir/graph.h"
#include "compiler/support/source.h"

namespace gradc {

std::string print_graph(const ModelIR& m, const SourceManager& sm, Roots roots = Roots::Model);
std::string print_graph_dot(const ModelIR& m, Roots roots = Roots::Model);
// Whether train_step computes a node of the gradient graph that the forward
// pass does not (a backward pass): false for the gradient-free optimizers,
// whose printout says so.
bool train_step_reads_gradients(const ModelIR& m);
// One node's op, attributes and operands, as in the text printout: "reduce_sum[axes=[1]] %3".
std::string node_str(const Graph& g, NodeId id, const std::vector<int>& numbering);

}  // namespace gradc
