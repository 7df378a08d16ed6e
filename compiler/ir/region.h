// Loop bodies (Region, graph.h): building them, copying them into another
// graph, and making the scan nodes that run them.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// A region under construction: its graph, a builder on it, its arguments
// and results as they are added. `finish` hands the region over, immutable.
class RegionBuilder {
 public:
  RegionBuilder() : r_(std::make_shared<Region>()), b_(r_->body) {}
  Builder& b() { return b_; }
  // A new argument leaf (appended to Region::args).
  NodeId arg(DType dtype, Shape shape, std::string name);
  void result(NodeId n) { r_->results.push_back(n); }
  std::shared_ptr<const Region> finish() { return std::move(r_); }

 private:
  std::shared_ptr<Region> r_;
  Builder b_;
};

// Copies the nodes of `r` that its results need into b's graph, each
// argument leaf replaced by the node of the same index in `args` (ids in
// b's graph, of the arguments' types); returns the results' ids there.
// Copies keep their source locations.
std::vector<NodeId> inline_region(Builder& b, const Region& r, const std::vector<NodeId>& args);
// The same with some of the body's nodes given ids in b's graph already
// (`given`: body id -> id in b's graph; the arguments among them or not):
// those are not copied, nor what only they need.
std::vector<NodeId> inline_region(Builder& b, const Region& r, const std::vector<NodeId>& args,
                                  std::unordered_map<NodeId, NodeId> given);
// Copies the nodes of graph g that `roots` need into b's graph, the nodes of
// `given` (g's id -> b's id) taken as they are; returns the roots' ids in b.
std::vector<NodeId> copy_nodes(Builder& b, const Graph& g, const std::vector<NodeId>& roots,
                               const std::unordered_map<NodeId, NodeId>& given);

// scan(operands) running `body` (its type checked by the shape rules), and
// its result i (ScanOut).
NodeId make_scan(Builder& b, std::shared_ptr<const Region> body, std::vector<NodeId> operands, const ScanAttrs& a);
NodeId scan_out(Builder& b, NodeId scan, int64_t i);

}  // namespace gradc
