// The gradient-free optimizers, genetic and es (SPEC 2.5), step for step.
#include "compiler/autodiff/gradient_free.h"

#include <fmt/format.h>

#include <limits>
#include <numbers>

#include "compiler/autodiff/batching.h"
#include "compiler/autodiff/optimizers.h"
#include "compiler/ir/builder.h"

namespace gradc {
namespace {

std::vector<int64_t> sizes_of(const Shape& s) {
  std::vector<int64_t> out;
  for (const Dim& d : s) out.push_back(d.size);
  return out;
}

// [P, s...] for a tensor of shape s.
std::vector<int64_t> with_rows(int64_t P, const Shape& s) {
  std::vector<int64_t> out{P};
  for (const Dim& d : s) out.push_back(d.size);
  return out;
}

Shape shape_of(const std::vector<int64_t>& sizes) {
  Shape s;
  for (int64_t v : sizes) s.push_back({v, {}});
  return s;
}

// What both optimizers draw and build with.
class Population {
 public:
  Population(ModelIR& m, Builder& b, NodeId t) : m(m), b(b), t(t) {
    for (NodeId n = 0; n < m.graph.size(); ++n)
      if (m.graph[n].op == Op::Input && m.graph[n].attrs.name == kRandomSeed) seed_ = n;
    if (seed_ == kNoNode) seed_ = b.leaf(Op::Input, kRandomSeed, DType::I32, {{2, {}}});
  }

  ModelIR& m;
  Builder& b;
  NodeId t;  // the step number, from 1 (f64)

  double option(std::string_view key) const { return m.optimizer.option(key); }
  int64_t count(std::string_view key) const { return static_cast<int64_t>(option(key)); }

  // Uniforms in [0, 1) of the given dtype and sizes, from a stream of their own.
  NodeId uniform(DType dt, const std::vector<int64_t>& sizes) {
    Attrs r;
    r.ints = {static_cast<int64_t>(stream_++), static_cast<int64_t>(dt)};
    r.ints.insert(r.ints.end(), sizes.begin(), sizes.end());
    return b.make(Op::RandomUniform, {seed_, t}, r);
  }
  // Standard normals: sqrt(-2 log(1 - u1)) * cos(2 pi u2) (1 - u1 is in (0, 1]).
  // Drawn as [rows, elements of a row] and reshaped (the same numbers: Philox
  // counts elements in row-major order), so that the loop drawing them runs
  // along a whole row and vectorizes, whatever the param's last axis.
  NodeId normal(DType dt, const std::vector<int64_t>& sizes) {
    int64_t rest = 1;
    for (size_t d = 1; d < sizes.size(); ++d) rest *= sizes[d];
    std::vector<int64_t> flat{sizes.empty() ? 1 : sizes[0], rest};
    if (sizes.empty()) flat = {1};
    NodeId u1 = uniform(dt, flat), u2 = uniform(dt, flat);
    NodeId radius = b.unary(Op::Sqrt, b.mul(b.constant(-2, dt), b.unary(Op::Log, b.sub(b.constant(1, dt), u1))));
    return b.reshape(b.mul(radius, b.unary(Op::Cos, b.mul(b.constant(2 * std::numbers::pi, dt), u2))), sizes);
  }

  // The training-mode loss of every member: [P] from stacked params [P, ...].
  std::optional<std::string> losses(const std::vector<NodeId>& stacked, int64_t P, NodeId* out) {
    std::vector<std::pair<NodeId, NodeId>> pairs;
    for (size_t i = 0; i < m.params.size(); ++i) pairs.emplace_back(m.params[i].node, stacked[i]);
    NodeId bad = kNoNode;
    std::vector<NodeId> r = batch_nodes(b, {m.training.loss.node}, pairs, P, &bad);
    if (r.empty())
      return fmt::format("optimizer {} evaluates its whole population in one forward, which the op '{}' does not allow",
                         m.optimizer.name, op_info(m.graph[bad].op).spelling);
    *out = r[0];
    if (b[*out].rank() == 0) *out = b.broadcast_to(b.reshape(*out, {1}), {{P, {}}});  // no param reaches the loss
    return std::nullopt;
  }

  // A state slot of param i (or of the whole model) with its input leaf.
  NodeId slot(const std::string& name, size_t param, DType dt, const std::vector<int64_t>& sizes) {
    std::string tensor = param == kWholeModel ? "opt." + name : fmt::format("opt.{}.{}", name, m.params[param].name);
    NodeId in = b.leaf(Op::Input, tensor, dt, shape_of(sizes));
    m.train.slots.push_back({name, param, tensor, in, kNoNode});
    return in;
  }
  void set_slot(const std::string& tensor, NodeId v) {
    for (StateSlot& s : m.train.slots)
      if (s.tensor == tensor) s.out = v;
  }

  NodeId i32_scalar_row(NodeId x) { return b.reshape(x, {1}); }

 private:
  NodeId seed_ = kNoNode;
  uint32_t stream_ = kOptimizerStream;
};

}  // namespace

// genetic (SPEC 2.5). With P members, E elites, C = P - E children and
// tournaments of T:
//   population = t == 1 ? [p, p + std * N(0, 1) ...] : opt.population
//   fitness    = the loss of every member (NaN and inf rank last)
//   elites     = the E members of least loss, in order (ties: the lower index)
//   parent     = the best of T members drawn uniformly (ties: the earlier draw), twice per child
//   child      = where(u < crossover, parent2, parent1) + where(u' < mutation_rate, std * N(0, 1), 0)
//   params     = the best member; opt.population = [elites..., children...]; opt.fitness = fitness
std::optional<std::string> build_genetic_step(ModelIR& m, Builder& b, NodeId t) {
  Population pop(m, b, t);
  const int64_t P = pop.count("population"), E = pop.count("elite"), T = pop.count("tournament"), C = P - E;
  const double std_dev = pop.option("mutation_std");
  // The population this step evaluates: the initial one at the first step.
  std::vector<NodeId> members, flat;
  for (size_t i = 0; i < m.params.size(); ++i) {
    NodeId p = m.params[i].node;
    const DType dt = b[p].dtype;
    const std::vector<int64_t> rows = with_rows(P, b[p].shape);
    NodeId state = pop.slot("population", i, dt, rows);
    NodeId init = b.broadcast_to(b.reshape(p, with_rows(1, b[p].shape)), shape_of(rows));
    if (P > 1) {
      std::vector<int64_t> others = with_rows(P - 1, b[p].shape);
      Attrs pad;
      pad.ints = {0, 1, 0};  // member 0 is the params themselves
      init = b.add(init, b.make(Op::Pad, {b.mul(b.constant(std_dev, dt), pop.normal(dt, others))}, pad));
    }
    members.push_back(b.where(b.binary(Op::Eq, t, b.constant(1, DType::F64)), init, state));
    flat.push_back(b.reshape(members.back(), {P, numel(b[p].shape)}));
  }
  NodeId loss = kNoNode;
  if (auto problem = pop.losses(members, P, &loss)) return problem;
  const DType lt = b[loss].dtype;
  // A NaN or infinite loss ranks last: as the largest finite value for the
  // selection, stored as inf.
  NodeId finite = b.binary(Op::Lt, b.unary(Op::Abs, loss), b.constant(std::numeric_limits<double>::infinity(), lt));
  NodeId inf = b.constant(std::numeric_limits<double>::infinity(), lt);
  NodeId rank_by = b.where(finite, loss, b.constant(lt == DType::F32 ? std::numeric_limits<float>::max()
                                                                    : std::numeric_limits<double>::max(), lt));
  pop.slot("fitness", kWholeModel, lt, {P});
  pop.set_slot("opt.fitness", b.where(finite, loss, inf));

  // The elites, best first: argmin (argmax of the negation picks the lowest
  // index among ties), then the taken member is set to inf, which ranks it
  // after every member still there.
  auto argmin = [&](NodeId x, int64_t axis) {
    Attrs a;
    a.ints = {axis};
    return b.make(Op::ArgMax, {b.neg(x)}, a);
  };
  auto one_hot = [&](NodeId ids, int64_t n) {
    Attrs a;
    a.ints = {n};
    return b.make(Op::OneHot, {ids}, a);
  };
  std::vector<NodeId> elites;
  NodeId remaining = rank_by;
  for (int64_t k = 0; k < std::max<int64_t>(E, 1); ++k) {
    NodeId best = argmin(remaining, 0);
    elites.push_back(b.reshape(best, {1}));
    remaining = b.where(one_hot(best, P), inf, remaining);
  }
  // Tournament selection: the best of T uniform draws, for each child.
  NodeId fitness_rows = b.reshape(rank_by, {P, 1});
  auto tournament = [&]() {
    NodeId u = pop.uniform(DType::F64, {C, T});
    NodeId drawn = b.cast(b.mul(u, b.constant(static_cast<double>(P), DType::F64)), DType::I32);  // floor(u P) in [0, P)
    NodeId their = b.reshape(b.make(Op::Embedding, {drawn, fitness_rows}), {C, T});
    NodeId winner = one_hot(argmin(their, 1), T);  // [C, T], f32
    return b.cast(b.reduce(Op::ReduceSum, b.mul(winner, b.cast(drawn, DType::F32)), {1}, false), DType::I32);
  };
  NodeId first = C > 0 ? tournament() : kNoNode, second = C > 0 ? tournament() : kNoNode;
  NodeId elite_ids = kNoNode;
  if (E > 0) {
    Attrs axis0;
    axis0.ints = {0};
    std::vector<NodeId> ids(elites.begin(), elites.begin() + E);
    elite_ids = ids.size() == 1 ? ids[0] : b.make(Op::Concat, ids, axis0);
  }
  for (size_t i = 0; i < m.params.size(); ++i) {
    NodeId p = m.params[i].node;
    const DType dt = b[p].dtype;
    const int64_t N = numel(b[p].shape);
    std::vector<NodeId> parts;
    if (E > 0) parts.push_back(b.make(Op::Embedding, {elite_ids, flat[i]}));
    if (C > 0) {
      // The parents' rows as products with one-hot rows (exact: one product
      // by 1, the rest by 0): a gather in the children's elementwise kernel
      // would keep it from vectorizing, and that kernel draws 4 Philox
      // numbers and a log and a cos per element.
      NodeId a = b.make(Op::MatMul, {b.cast(one_hot(first, P), dt), flat[i]});
      NodeId c = b.make(Op::MatMul, {b.cast(one_hot(second, P), dt), flat[i]});
      NodeId cross = b.binary(Op::Lt, pop.uniform(dt, {C, N}), b.constant(pop.option("crossover"), dt));
      NodeId child = b.where(cross, c, a);
      NodeId mutate = b.binary(Op::Lt, pop.uniform(dt, {C, N}), b.constant(pop.option("mutation_rate"), dt));
      NodeId noise = b.mul(b.constant(std_dev, dt), pop.normal(dt, {C, N}));
      parts.push_back(b.add(child, b.where(mutate, noise, b.constant(0, dt))));
    }
    Attrs axis0;
    axis0.ints = {0};
    NodeId next = parts.size() == 1 ? parts[0] : b.make(Op::Concat, parts, axis0);
    pop.set_slot(fmt::format("opt.population.{}", m.params[i].name), b.reshape(next, with_rows(P, b[p].shape)));
    m.train.new_params.push_back(b.reshape(b.make(Op::Embedding, {elites[0], flat[i]}), sizes_of(b[p].shape)));
  }
  return std::nullopt;
}

// es (SPEC 2.5): with n = population antithetic pairs and e_i ~ N(0, 1) of
// every param's shape,
//   g = sum_i (L(p + sigma e_i) - L(p - sigma e_i)) e_i / (2 sigma n);  p -= lr g
std::optional<std::string> build_es_step(ModelIR& m, Builder& b, NodeId t) {
  Population pop(m, b, t);
  const int64_t n = pop.count("population");
  const double sigma = pop.option("sigma");
  std::vector<NodeId> noise, members;
  Attrs axis0;
  axis0.ints = {0};
  for (const ParamDecl& pd : m.params) {
    NodeId p = pd.node;
    const DType dt = b[p].dtype;
    noise.push_back(pop.normal(dt, with_rows(n, b[p].shape)));
    NodeId step = b.mul(b.constant(sigma, dt), noise.back());
    NodeId up = b.add(p, step), down = b.sub(p, step);  // p broadcasts over the pairs
    members.push_back(b.make(Op::Concat, {up, down}, axis0));
  }
  NodeId loss = kNoNode;
  if (auto problem = pop.losses(members, 2 * n, &loss)) return problem;
  Attrs first, second;
  first.ints = {0, 0, n};
  second.ints = {0, n, 2 * n};
  NodeId diff = b.sub(b.make(Op::Slice, {loss}, first), b.make(Op::Slice, {loss}, second));  // [n]
  for (size_t i = 0; i < m.params.size(); ++i) {
    NodeId p = m.params[i].node;
    const DType dt = b[p].dtype;
    const int64_t N = numel(b[p].shape);
    NodeId d = b.reshape(b.cast(diff, dt), {1, n});
    NodeId g = b.reshape(b.make(Op::MatMul, {d, b.reshape(noise[i], {n, N})}), sizes_of(b[p].shape));
    g = b.mul(g, b.constant(1 / (2 * sigma * static_cast<double>(n)), dt));
    m.train.new_params.push_back(b.sub(p, b.mul(b.cast(m.train.lr, dt), g)));
  }
  return std::nullopt;
}

}  // namespace gradc
