// The graph IR: uniform, immutable, hash-consed nodes.
//
// A node is (op, dtype, shape, operands, attributes) plus the source location
// that caused it. The Graph interns nodes: adding a node equal to an existing
// one returns the existing id, so structurally identical subgraphs are one
// node and common-subexpression elimination is automatic. Operands always
// have smaller ids than their users, so id order is a topological order.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/ir/ops.h"
#include "compiler/ir/types.h"
#include "compiler/support/source.h"

namespace gradc {

using NodeId = uint32_t;
inline constexpr NodeId kNoNode = UINT32_MAX;

struct Region;

// Op attributes; the meaning of `ints` per op kind is listed in ops.def.
struct Attrs {
  std::vector<int64_t> ints;
  double value = 0;       // Constant
  bool keepdims = false;  // Reduce, ArgMax
  std::string name;       // Input, Param
  // Scan: the loop body, a graph of its own (immutable once built, so nodes
  // and graphs share it; two scans are equal only with the same body object).
  std::shared_ptr<const Region> region;

  bool operator==(const Attrs& o) const {
    // Compare constants bitwise so that 0.0 and -0.0 (and NaNs) stay distinct.
    return ints == o.ints && keepdims == o.keepdims && name == o.name && region == o.region &&
           std::memcmp(&value, &o.value, sizeof value) == 0;
  }
};

struct Node {
  Op op = Op::Constant;
  DType dtype = DType::F32;
  Shape shape;
  std::vector<NodeId> operands;
  Attrs attrs;
  SourceLoc loc;  // the DSL location that caused this node (not part of its identity)

  int rank() const { return static_cast<int>(shape.size()); }
};

// Largest number of nodes one graph may hold; protects against models whose
// nested grad() or inlining blows up.
inline constexpr size_t kMaxNodes = 2'000'000;

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&&) = default;
  Graph& operator=(Graph&&) = default;

  // Interns `n`; the returned id names an equal node (n's loc is kept only if new).
  NodeId add(Node n);
  const Node& operator[](NodeId id) const { return nodes_[id]; }
  size_t size() const { return nodes_.size(); }
  const std::deque<Node>& nodes() const { return nodes_; }

 private:
  static size_t hash_node(const Node& n);
  static bool equal_nodes(const Node& a, const Node& b);

  // A deque: adding nodes never moves existing ones, so a `const Node&`
  // stays valid while more graph is built (autodiff and lowering rely on it).
  std::deque<Node> nodes_;
  // Interning index: structural hash -> ids of the nodes with that hash.
  std::unordered_multimap<size_t, NodeId> index_;
};

// The body of a loop (Op::Scan): a graph of its own whose Input leaves are
// the loop's arguments, in order: the carries, one slice of each scanned
// tensor (xs), then the captures (outer values the body reads, loop
// invariant). Its results are the new carries, then the per-step outputs
// (ys), which the scan stacks along a new leading axis.
struct Region {
  Graph body;
  std::vector<NodeId> args;
  std::vector<NodeId> results;
};

// A Scan's attributes (Attrs::ints), by position.
struct ScanAttrs {
  int64_t carries = 0, xs = 0, length = 0;  // m, k, T
  bool reverse = false;
  int64_t checkpoint = 0;
  static ScanAttrs of(const Attrs& a) { return {a.ints[0], a.ints[1], a.ints[2], a.ints[3] != 0, a.ints[4]}; }
  std::vector<int64_t> ints() const { return {carries, xs, length, reverse ? 1 : 0, checkpoint}; }
};

// How a param is initialized (SPEC 2.2).
struct InitSpec {
  enum class Kind : uint8_t { Zeros, Ones, Constant, Uniform, Normal, XavierUniform, XavierNormal, HeUniform, HeNormal };
  Kind kind = Kind::Zeros;
  double a = 0, b = 0;  // constant(a), uniform(a, b), normal(mean a, std b)
};
std::string init_str(const InitSpec& init);

struct NamedNode {
  std::string name;
  NodeId node = kNoNode;
  SourceLoc loc;
};

struct ParamDecl {
  std::string name;
  NodeId node = kNoNode;
  InitSpec init;
  SourceLoc loc;
  // Passed directly as the weight of a convolution, [O, C/groups, k..]: the
  // fan-based initializers use PyTorch's convolution fans (SPEC 2.2).
  bool conv_weight = false;
};

struct OptimizerSpec {
  std::string name = "sgd";
  // Every option of the optimizer, defaults filled in, in the order of SPEC 2.5.
  std::vector<std::pair<std::string, double>> options;
  SourceLoc loc;
  double option(std::string_view key) const;
  // The default learning rate: the `lr` option, or 0 for the gradient-free
  // optimizers, which have none (train_step ignores its lr argument).
  double lr() const;
};

// One optimizer state tensor: of one param ("opt.SLOT.PARAM" in files), or
// of the whole model (the genetic optimizer's "opt.fitness").
inline constexpr size_t kWholeModel = static_cast<size_t>(-1);
struct StateSlot {
  std::string slot;       // momentum_buffer, exp_avg, exp_avg_sq, square_avg, grad_avg, sum, population, fitness
  size_t param = 0;       // index into ModelIR::params; kWholeModel for a slot of the model
  std::string tensor;     // its name in files and entry points: "opt.SLOT.PARAM" or "opt.SLOT"
  NodeId in = kNoNode;    // the Input leaf holding its value before the step
  NodeId out = kNoNode;   // its value after the step
};

// The train_step entry point: the loss, then every param and state slot updated.
struct TrainStep {
  NodeId lr = kNoNode;        // f64 scalar input
  NodeId step_in = kNoNode;   // f64 scalar input: steps taken before this one
  NodeId step_out = kNoNode;  // step_in + 1
  std::vector<NodeId> new_params;  // per param
  std::vector<StateSlot> slots;
  bool built() const { return lr != kNoNode; }
};

// A choice the compiler made where the language leaves it one (which
// accumulation a jacobian() uses), at the call that caused it; graph dumps
// print it as a comment.
struct Remark {
  SourceLoc loc;
  std::string text;
};

// The roots of the entry points that run in training mode, `grad` and
// `train_step` (SPEC 2.7: batch statistics, dropout active). Sema fills them
// by analyzing the model's roots a second time in training mode when some
// builtin asked for the mode (Sema::training()); hash-consing makes the two
// analyses share every node that does not depend on the mode. Without such
// a builtin they are the evaluation roots themselves.
struct TrainingRoots {
  NamedNode loss;
  std::vector<NamedNode> outputs;
  std::vector<NamedNode> values;   // top-level named values (for CompileOptions::wrt)
  std::vector<NodeId> new_buffers;  // per buffer: its value after train_step (the leaf when unchanged)
};

// A checked model: its graph and the roles of its nodes.
struct ModelIR {
  std::string name;
  Graph graph;
  std::vector<std::pair<std::string, int64_t>> dims;  // bound values, in declaration order
  // The dims of `dims` that are dynamic and were not fixed by an override
  // (SPEC 2.2): their values in `dims` are stand-ins, and a call binds them
  // from its inputs' shapes (Model::Impl::specialization).
  std::vector<std::string> dynamic_dims;
  // A model compiled at a capacity (SPEC 2.2; docs/internals.md, "Dynamic
  // dims"): these dynamic dims' values in `dims` are capacities, and a call
  // of any size up to one binds "@size.D" (f32 scalar, the size) and
  // "@valid.D" (f32[capacity], 1 for the first `size` rows, else 0).
  std::vector<std::pair<std::string, int64_t>> capacities;
  // Per capacity, its "@size.D" leaf: every entry of a capacity compile reads
  // it, so that matrix products along the dim can stop at the call's size
  // (plan_row_bounds in compiler/codegen/row_bounds.h).
  std::vector<NodeId> sizes;
  // Per result an entry may produce ("out.y", "grad.x"), the dim (an index
  // into `capacities`) each axis holds, -1 for none, or -2 when a dim is
  // merged with other axes there (that result cannot be trimmed). Results
  // not listed hold no dynamic dim (mask_padding).
  std::vector<std::pair<std::string, std::vector<int>>> trim;
  std::vector<NamedNode> inputs;
  std::vector<ParamDecl> params;
  // Persistent state that is not trained (batch_norm's running statistics):
  // Input leaves named by the buffer, initialized like params.
  std::vector<ParamDecl> buffers;
  std::vector<NamedNode> values;   // top-level named values
  std::vector<NamedNode> outputs;
  std::vector<NamedNode> metrics;
  NamedNode loss;
  TrainingRoots training;
  OptimizerSpec optimizer;
  // d loss / d param for every param, in params order ("grad.NAME"), of the
  // training-mode loss; filled by differentiate_loss().
  std::vector<NamedNode> grads;
  // The optimizer step; filled by build_train_step().
  TrainStep train;
  std::vector<Remark> remarks;  // in source order of analysis, without repeats
};

// Which roots liveness (and a printout) counts: the model's own (loss,
// outputs, metrics, in both modes), plus the gradients, plus the optimizer
// step (and the buffers it updates).
enum class Roots { Model, Grads, All };

// Nodes reachable from the model's roots, in id (topological) order.
std::vector<NodeId> live_nodes(const ModelIR& m, Roots roots = Roots::Model);

}  // namespace gradc
