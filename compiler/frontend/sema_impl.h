// Internals of semantic analysis shared by sema.cpp (statements, names, fns,
// operators) and builtins.cpp (the builtin function table).
#pragma once

#include <fmt/format.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "compiler/frontend/sema.h"

#include "compiler/ir/builder.h"
#include "compiler/ir/dynamic_axes.h"
#include "compiler/ir/region.h"

namespace gradc {

// The value of an expression during analysis.
struct Value {
  enum class Kind : uint8_t {
    Poison,  // an error was already reported; uses stay silent
    Tensor,  // a graph node
    Number,  // an untyped literal (or a dim used as a number); gets its dtype from its neighbour
  };
  Kind kind = Kind::Poison;
  NodeId node = kNoNode;
  double number = 0;
  bool is_int = false;
  SourceLoc loc;             // the expression
  std::string_view name;     // set when the expression is a plain name
  SourceLoc decl_loc;        // ... and where that name was declared
  // A dim compiled at a capacity, used as a number: `number` is the capacity,
  // and materialize() makes the dim's run-time size instead.
  std::string_view size_of_dim;

  bool poison() const { return kind == Kind::Poison; }
  static Value tensor(NodeId n, SourceLoc loc) { return {Kind::Tensor, n, 0, false, loc, {}, {}, {}}; }
  static Value num(double v, bool is_int, SourceLoc loc) { return {Kind::Number, kNoNode, v, is_int, loc, {}, {}, {}}; }
  static Value bad() { return {}; }
};

class Sema;

// A builtin's parameter: how its argument is evaluated.
enum class ArgKind : uint8_t {
  Tensor,     // any expression; a literal stays a Number
  Int,        // an integer literal, optionally negative, or a dim name
  IntOrList,  // Int or a list of them (reduction axes)
  IntList,    // [Int, ...] (sizes, permutations)
  Float,      // a number literal, optionally negative, or true/false
  DType,      // f32 or f64
  TensorList, // [expr, ...]
  Name,       // a plain name, evaluated as a tensor (grad's x)
  Fn,         // the name of a fn, not evaluated (scan's f)
  TensorOrList,  // an expression or [expr, ...], evaluated by the builtin (scan's xs)
};

struct ParamSpec {
  std::string_view name;
  ArgKind kind;
  bool required = true;
};

// Arguments bound to a builtin's parameters (positional or keyword).
struct CallArgs {
  const Expr* call = nullptr;
  std::vector<const Expr*> exprs;  // per ParamSpec; nullptr when not given
  std::vector<Value> values;       // evaluated Tensor/Name args (Poison when absent)
  bool given(size_t i) const { return exprs[i] != nullptr; }
};

struct BuiltinSpec {
  std::string_view name;
  std::vector<ParamSpec> params;
  std::function<Value(Sema&, CallArgs&)> lower;
  const OpInfo* row = nullptr;  // the op-table row it lowers to; null for composites
};

// Limits of analysis (compilation runs on a large stack, support/stack.h).
inline constexpr int kMaxFnNesting = 64;
inline constexpr int kMaxEvalDepth = 20000;

// "dim", "input", "param", "fn", "value", "metric": a declaration's kind in messages.
std::string_view kind_name(StmtKind k);

const BuiltinSpec* find_builtin(std::string_view name);
// Adds batch_norm and layer_norm (builtins_norm.cpp) to the builtin table.
void add_norm_builtins(std::vector<BuiltinSpec>& table);
// Every builtin's name (for suggestions).
std::vector<std::string_view> builtin_names();

class Sema {
 public:
  Sema(const Ast& ast, const SourceManager& sm, DiagEngine& diags, const SemaOptions& opts);
  std::optional<ModelIR> run();

  // ---- used by builtins ----
  Builder& b() { return b_; }
  const Graph& g() const { return b_.graph(); }
  void error(SourceLoc loc, std::string msg);
  void note(SourceLoc loc, std::string msg);
  // Adds "'x' declared here with shape ..." notes for operands that are plain names.
  void note_operands(std::initializer_list<const Value*> vals);
  // Records a choice the compiler made at `loc` (ModelIR::remarks), once.
  void remark(SourceLoc loc, std::string text);

  Value eval(const Expr& e);
  // A Number becomes a constant of `dtype`; a Tensor stays as it is.
  NodeId materialize(const Value& v, DType dtype);
  // A float tensor argument: Numbers become f32 constants; i32 is an error.
  std::optional<NodeId> float_tensor(const Value& v, std::string_view fn, std::string_view what);
  std::optional<int64_t> const_int(const Expr& e, std::string_view what);
  std::optional<double> const_float(const Expr& e, std::string_view what);
  std::optional<int> axis_of(const Expr& e, int rank, std::string_view fn);
  // The number of elements of x along `axes`, as a scalar of x's dtype: a
  // mean's divisor. A constant; in a model compiled at a capacity
  // (SemaOptions::capacities), the product of the constant sizes and the
  // run-time sizes ("@size.B" leaves) of the dynamic dims among the axes.
  NodeId count(NodeId x, const std::vector<int64_t>& axes);
  // The run-time size of a dim compiled at a capacity, as a scalar of `dtype`.
  NodeId size_of(std::string_view dim, DType dtype);
  // Reports that a dim compiled at a capacity is used where only its
  // compile-time value would do (arithmetic on numbers): the model is then
  // specialized per size instead (Model::Impl::specialization).
  void refuse_capacity(const Value& dim_use) {
    error(dim_use.loc, fmt::format("the model cannot run at a capacity: the dynamic dim {} is used in arithmetic on "
                                   "numbers here",
                                   dim_use.size_of_dim));
  }
  // Applies an elementwise op to Values with literal/dtype handling and diagnostics at op_loc.
  Value elementwise(Op op, const Value& a, const Value& b, SourceLoc op_loc);
  Value matmul(const Value& a, const Value& b, SourceLoc op_loc);
  // ---- loops ----
  // scan(f, init, xs, axis, reverse, checkpoint) (sema_scan.cpp).
  Value scan(CallArgs& a);
  // Whether the expression being analyzed is in a scan's body.
  bool in_loop_body() const { return !bodies_.empty(); }

  // Builds through the builder; on a type error reports it at `loc`.
  Value build(Op op, std::vector<NodeId> operands, Attrs attrs, SourceLoc loc);
  // When n is a param, it is a convolution's weight (ParamDecl::conv_weight).
  void mark_conv_weight(NodeId n);

  // ---- randomness ----
  // The leaves every random op reads: the seed's two words ("@seed") and the
  // step number (the optimizer's step counter "@step" + 1, the step being taken).
  NodeId random_seed();
  NodeId step_number();
  // A stream id per random call site, in the order sema lowers them.
  int64_t next_stream() { return streams_++; }

  // ---- training and evaluation mode (SPEC 2.7) ----
  // Whether the value being analyzed is for training mode (grad,
  // train_step). A builtin whose result depends on the mode asks this; that
  // makes sema analyze the model's roots a second time, in training mode
  // (ModelIR::training).
  bool training() const {
    mode_asked_ = true;
    return training_;
  }
  // The buffer declaration whose leaf is `node`, or nullptr.
  const ParamDecl* buffer_of(NodeId node) const;
  // A buffer's value as train_step has updated it so far (the leaf before any update).
  NodeId buffer_value(NodeId buffer) const;
  // Records the buffer's value after train_step (in training mode; nothing otherwise).
  void update_buffer(NodeId buffer, NodeId value);

 private:
  struct Decl {
    const Stmt* stmt = nullptr;
    size_t index = 0;  // statement index
    enum class State : uint8_t { Pending, Busy, Done } state = State::Pending;
    Value value;
  };
  struct Scope {
    const Stmt* fn = nullptr;
    std::unordered_map<std::string_view, Value> names;
    SourceLoc call_loc;
  };

  NodeId seed_leaf_ = kNoNode, step_number_ = kNoNode;
  // A capacity compile's dynamic axes (of the top-level graph), made on first use by count().
  std::optional<DynamicAxes> dynamic_axes_;
  int64_t streams_ = 0;

  void declare_all();
  void bind_dims();
  void declare_leaf(const Stmt& s);
  std::optional<Shape> resolve_type(const TypeRef& t, DType& dtype);
  std::optional<InitSpec> resolve_init(const Stmt& s, const Shape& shape);
  Value lookup(const Expr& e);
  Value eval_decl(Decl& d, SourceLoc use);
  Value eval_binary(const Expr& e);
  Value eval_call(const Expr& e);
  Value call_fn(const Stmt& fn, const Expr& call);
  // Inlines fn with its arguments already evaluated (call_fn, scan's f).
  Value call_fn_with(const Stmt& fn, std::vector<Value> args, SourceLoc call_loc);
  Value call_builtin(const BuiltinSpec& spec, const Expr& call);
  void check_fn_body(const Stmt& fn);
  void finish_outputs();
  void analyze_training_mode();
  void finish_loss_and_metrics();
  // Checks the optimizer statement (nullptr: the default sgd) into model_.optimizer.
  void resolve_optimizer(const Stmt* s);
  std::string suggest(std::string_view name, bool functions) const;
  // v as the value named `name`: when grad(), jvp() or jacobian() differentiates with
  // respect to that name somewhere (differentiated_), v's node made again
  // with the name in its attributes, so that it is no longer equal to the
  // same expression written elsewhere. An alias of a leaf or of another
  // named value stays what it is (as in PyTorch, it is that tensor).
  Value named(Value v, std::string_view name);

  const Ast& ast_;
  const SourceManager& sm_;
  DiagEngine& diags_;
  const SemaOptions& opts_;
  ModelIR model_;
  Builder b_;
  std::map<std::string_view, Decl> decls_;
  std::set<std::string_view> broken_;
  std::map<std::string_view, int64_t> dims_;
  // Dynamic dims that no override fixed: bound to a stand-in size for
  // checking (see bind_dims); their Dims are marked dynamic.
  std::set<std::string_view> dynamic_dims_;
  std::set<std::string_view> capacity_dims_;  // of those, the ones compiled at a capacity (SemaOptions::capacities)
  std::set<std::string_view> used_dims_;  // dims some shape or expression names
  // Names that some grad(e, x), jvp(e, x, v) or jacobian(e, x) has as its x. A named value
  // (a top-level one or a fn local) of such a name gets a node of its own,
  // so that differentiating with respect to it counts its uses only, as
  // PyTorch does, not those of an equal expression written elsewhere, which
  // hash-consing would otherwise make the same node.
  std::set<std::string_view> differentiated_;
  // Warnings for inputs, params and dims that nothing uses.
  void warn_unused();
  std::vector<Scope> scopes_;       // fn scopes being inlined, innermost last
  size_t current_stmt_ = 0;         // index of the top-level statement being analyzed
  int depth_ = 0;                   // evaluation recursion depth (across inlined fns)
  std::set<std::pair<uint32_t, std::string>> reported_;  // (offset, message) already reported
  // Results of fn calls by (graph, fn, arguments): node ids or literal
  // values. The graph is the model's or a loop body's (ids are per graph).
  using FnCallKey = std::tuple<const Graph*, const Stmt*, std::vector<std::pair<double, int>>>;
  std::map<FnCallKey, Value> fn_cache_;
  // fn -> the fn calls in its body (for finding recursion in fns never called).
  std::map<const Stmt*, std::vector<const Expr*>> fn_calls_;
  void check_recursion();
  bool last_error_suppressed_ = false;
  bool training_ = false;
  mutable bool mode_asked_ = false;
  std::map<NodeId, NodeId> buffer_updates_;  // buffer leaf -> its value after train_step

  // Loop bodies being analyzed, innermost last: the builder builds into the
  // innermost one's graph; a top-level value used there is captured (an
  // argument of that body, and of every body between it and the top).
  struct Body {
    RegionBuilder rb;
    std::map<NodeId, NodeId> captured;  // id in the enclosing graph -> argument
    std::vector<NodeId> captures;       // ids in the enclosing graph, in argument order
  };
  std::vector<Body*> bodies_;
  // Every body made, kept alive: fn_cache_ keys name their graphs.
  std::vector<std::shared_ptr<const Region>> regions_;
  // Points the builder at the innermost body's graph (or the model's).
  void rebind();
  // A node of the model's graph as seen from the innermost body.
  NodeId import_top(NodeId top);
  // Runs f with no body open (analysis of a top-level value), then reopens them.
  template <class F>
  auto at_top(F f) {
    std::vector<Body*> saved;
    std::swap(saved, bodies_);
    rebind();
    auto r = f();
    std::swap(saved, bodies_);
    rebind();
    return r;
  }
};

}  // namespace gradc
