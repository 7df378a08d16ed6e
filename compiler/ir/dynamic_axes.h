// Which axes of a graph's nodes hold a dynamic dim, for models compiled at a
// capacity (SPEC 2.2; docs/internals.md, "Dynamic dims").
//
// A model compiled at capacity C for a dynamic dim B runs any size n <= C:
// every tensor is laid out as if B were C, and rows n..C of the inputs are
// padding. An axis "holds" B when its elements are indexed by B, alone
// (size C) or merged with other axes by a reshape (size outer * C * inner,
// B at stride `inner`). Only ops that combine elements along such an axis
// can see the padding: the analysis finds them, and refuses the ones that
// cannot be made exact by masking (a concat, slice or window along it, a
// scan over it or whose body combines rows along it, a reshape that splits B).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

struct DynAxis {
  int dim = -1;       // index into the analysis' dims; -1: the axis holds no dynamic dim
  int64_t inner = 1;  // B's stride within the axis (1 unless merged with axes after it)
  bool operator==(const DynAxis& o) const { return dim == o.dim && inner == o.inner; }
};

class DynamicAxes {
 public:
  // `dims`: the dynamic dims' names and capacities; an Input leaf's axis
  // holds a dim when its Dim is marked dynamic with that name.
  // With `refuse_mixing` false, a scan whose body combines rows along a
  // dynamic axis (a backward scan: the masking pass made its sums exact)
  // still gets its facts: for the planner, which asks where the dims are
  // rather than whether a capacity works.
  DynamicAxes(const Graph& g, std::vector<std::pair<std::string, int64_t>> dims, bool refuse_mixing = true);
  // Takes `facts` for leaf `leaf` (a loop body's argument) instead of its Dims'.
  void seed(NodeId leaf, std::vector<DynAxis> facts);

  // The facts of each axis of node `id`, or nullptr when the node (or one
  // it reads) does something along a dynamic axis that capacity cannot
  // handle; why() then says what.
  const std::vector<DynAxis>* of(NodeId id);
  const std::string& why() const { return why_; }
  // The analysis of scan `scan`'s body (its arguments seeded with the facts
  // the scan gives them), once of(scan) has run; nullptr when the scan holds
  // no dynamic dim or was refused.
  DynamicAxes* body(NodeId scan) {
    auto it = bodies_.find(scan);
    return it == bodies_.end() ? nullptr : it->second.get();
  }

  // Whether reducing `id`'s operand along `axes` combines elements of a
  // dynamic axis (those axes' facts, one per axis; empty when none does).
  std::vector<std::pair<int64_t, DynAxis>> dynamic_among(NodeId operand, const std::vector<int64_t>& axes);

  const std::vector<std::pair<std::string, int64_t>>& dims() const { return dims_; }

 private:
  std::optional<std::vector<DynAxis>> infer(NodeId id, const Node& n);
  // A scan's: each result's facts (a ScanOut's, the stacked ones without their step axis), or nullopt.
  std::optional<std::vector<std::vector<DynAxis>>> scan_results(NodeId id, const Node& scan);
  bool refuse(const Node& n, std::string what);

  const Graph* g_;
  std::vector<std::pair<std::string, int64_t>> dims_;
  std::vector<std::optional<std::vector<DynAxis>>> memo_;
  std::vector<bool> done_;
  std::map<NodeId, std::vector<DynAxis>> seeds_;
  std::map<NodeId, std::vector<std::vector<DynAxis>>> scans_;  // scan_results of each scan
  std::map<NodeId, std::unique_ptr<DynamicAxes>> bodies_;      // the body analysis of each
  bool refuse_mixing_ = true;
  std::string why_;
};

}  // namespace gradc
