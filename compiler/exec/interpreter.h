// The reference interpreter: a deliberately simple evaluator of any graph.
//
// It is the oracle for the JIT and the `--backend interp` of the CLI. Every
// value is held as doubles; a node of dtype f32 has each element rounded to
// float after it is computed (so results follow f32 arithmetic to within an
// ulp per op), unless `promote_f32` asks for plain f64 throughout (used by
// gradcheck's finite differences). i32 values are exact integers.
#pragma once

#include <unordered_map>
#include <vector>

#include "compiler/ir/graph.h"
#include "gradc/tensor.h"

namespace gradc {

// A failure while evaluating (such as a class id outside one_hot's range),
// with the DSL location of the node that failed.
struct EvalError : DataError {
  EvalError(const std::string& msg, SourceLoc where) : DataError(msg), loc(where) {}
  SourceLoc loc;
};

class Interpreter {
 public:
  explicit Interpreter(const Graph& g, bool promote_f32 = false);

  // Gives an Input or Param leaf its value; throws DataError on a dtype/shape mismatch.
  void bind(NodeId leaf, const Tensor& value);
  // Gives a leaf raw values (element count checked; no rounding).
  void bind_values(NodeId leaf, std::vector<double> values);
  // Evaluates every node the roots need (each at most once).
  void run(const std::vector<NodeId>& roots);
  // A computed node as a tensor of the node's dtype (f64 when promoted).
  Tensor result(NodeId id) const;
  const std::vector<double>& values(NodeId id) const { return vals_[id]; }
  bool evaluated(NodeId id) const { return done_[id]; }

 private:
  void eval(NodeId id);

  const Graph& g_;
  bool promote_;
  std::vector<std::vector<double>> vals_;
  std::vector<bool> done_;
  // A scan's results (the scan node is a tuple; scan_out reads them).
  std::unordered_map<NodeId, std::vector<std::vector<double>>> tuples_;
};

}  // namespace gradc
