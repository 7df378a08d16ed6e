// The reference interpreter: one straightforward loop nest per op kind.
#include "compiler/exec/interpreter.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "compiler/ir/scalar_eval.h"
#include "compiler/ir/shape_rules.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/messages.h"
#include "runtime/philox.h"

namespace gradc {
namespace {

using Sizes = std::vector<int64_t>;

// Strides to read an operand of shape `in` while walking `out` (NumPy
// broadcasting: a missing or size-1 axis gets stride 0).
Sizes broadcast_strides(const Sizes& in, const Sizes& out) {
  Sizes s(out.size(), 0);
  Sizes rs = row_major_strides(in);
  size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[lead + i] = in[i] == 1 ? 0 : rs[i];
  return s;
}

// Walks every multi-index of `shape` in row-major order, keeping one offset
// per stride set; calls f(linear index, offsets).
template <size_t N, class F>
void walk(const Sizes& shape, const std::array<Sizes, N>& strides, F&& f) {
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  std::vector<int64_t> idx(shape.size(), 0);
  std::array<int64_t, N> off{};
  for (int64_t i = 0; i < total; ++i) {
    f(i, off);
    for (int a = static_cast<int>(shape.size()) - 1; a >= 0; --a) {
      if (++idx[a] < shape[a]) {
        for (size_t k = 0; k < N; ++k) off[k] += strides[k][a];
        break;
      }
      for (size_t k = 0; k < N; ++k) off[k] -= strides[k][a] * (shape[a] - 1);
      idx[a] = 0;
    }
  }
}

}  // namespace

Interpreter::Interpreter(const Graph& g, bool promote_f32)
    : g_(g), promote_(promote_f32), vals_(g.size()), done_(g.size(), false) {}

void Interpreter::bind(NodeId leaf, const Tensor& value) {
  const Node& n = g_[leaf];
  GRADC_ASSERT(n.op == Op::Input || n.op == Op::Param, "bind: not a leaf");
  bool dtype_ok = value.dtype() == n.dtype || (promote_ && n.dtype == DType::F32 && value.dtype() == DType::F64);
  if (!dtype_ok || value.shape() != sizes(n.shape))
    throw DataError(fmt::format("tensor '{}': expected {}, got {}", n.attrs.name, type_str(n.dtype, n.shape),
                                value.type_string()));
  std::vector<double>& v = vals_[leaf];
  v.resize(static_cast<size_t>(value.numel()));
  for (int64_t i = 0; i < value.numel(); ++i) v[i] = value.get(i);
  done_[leaf] = true;
}

void Interpreter::bind_values(NodeId leaf, std::vector<double> values) {
  GRADC_ASSERT(values.size() == static_cast<size_t>(numel(g_[leaf].shape)), "bind_values: wrong element count");
  vals_[leaf] = std::move(values);
  done_[leaf] = true;
}

void Interpreter::run(const std::vector<NodeId>& roots) {
  // Mark what the roots need, then evaluate in id (topological) order.
  std::vector<bool> need(g_.size(), false);
  for (NodeId r : roots) need[r] = true;
  for (size_t i = g_.size(); i-- > 0;)
    if (need[i] && !done_[i])
      for (NodeId o : g_[static_cast<NodeId>(i)].operands) need[o] = true;
  for (NodeId i = 0; i < g_.size(); ++i)
    if (need[i] && !done_[i]) eval(i);
}

Tensor Interpreter::result(NodeId id) const {
  const Node& n = g_[id];
  GRADC_ASSERT(done_[id], "result of a node that was not evaluated");
  DType dt = promote_ && n.dtype == DType::F32 ? DType::F64 : n.dtype;
  Tensor t(dt, sizes(n.shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, vals_[id][i]);
  return t;
}

void Interpreter::eval(NodeId id) {
  const Node& n = g_[id];
  if (n.op == Op::Input || n.op == Op::Param)
    throw DataError(fmt::format("{} '{}' has no value", n.op == Op::Input ? "input" : "param", n.attrs.name));
  Sizes out_shape = sizes(n.shape);
  int64_t total = 1;
  for (int64_t d : out_shape) total *= d;
  std::vector<double> out(static_cast<size_t>(total), 0.0);
  auto in = [&](size_t k) -> const std::vector<double>& { return vals_[n.operands[k]]; };
  auto in_shape = [&](size_t k) { return sizes(g_[n.operands[k]].shape); };
  const Attrs& at = n.attrs;

  switch (op_kind(n.op)) {
    case OpKind::Leaf:
      out[0] = at.value;
      break;
    case OpKind::Unary:
    case OpKind::Cast: {
      const auto& x = in(0);
      for (int64_t i = 0; i < total; ++i) out[i] = n.op == Op::Cast ? x[i] : eval_unary(n.op, x[i]);
      break;
    }
    case OpKind::Binary:
    case OpKind::Compare: {
      const auto &a = in(0), &b = in(1);
      std::array<Sizes, 2> st{broadcast_strides(in_shape(0), out_shape), broadcast_strides(in_shape(1), out_shape)};
      walk<2>(out_shape, st, [&](int64_t i, const std::array<int64_t, 2>& o) { out[i] = eval_binary(n.op, a[o[0]], b[o[1]]); });
      break;
    }
    case OpKind::Select: {
      const auto &c = in(0), &a = in(1), &b = in(2);
      std::array<Sizes, 3> st{broadcast_strides(in_shape(0), out_shape), broadcast_strides(in_shape(1), out_shape),
                              broadcast_strides(in_shape(2), out_shape)};
      walk<3>(out_shape, st,
              [&](int64_t i, const std::array<int64_t, 3>& o) { out[i] = c[o[0]] != 0 ? a[o[1]] : b[o[2]]; });
      break;
    }
    case OpKind::Reduce: {
      Sizes xs = in_shape(0);
      Sizes kept = xs;
      for (int64_t a : at.ints) kept[a] = 1;
      Sizes st = row_major_strides(kept);
      for (int64_t a : at.ints) st[a] = 0;
      ReduceRule rule = reduce_rule(n.op);
      std::fill(out.begin(), out.end(), rule.identity);
      const auto& x = in(0);
      walk<1>(xs, {st}, [&](int64_t i, const std::array<int64_t, 1>& o) {
        double& r = out[o[0]];
        r = eval_binary(rule.combine, r, x[i]);
      });
      break;
    }
    case OpKind::ArgMax: {
      Sizes xs = in_shape(0);
      int64_t axis = at.ints[0], outer = 1, inner = 1, len = xs[axis];
      for (int64_t a = 0; a < axis; ++a) outer *= xs[a];
      for (size_t a = axis + 1; a < xs.size(); ++a) inner *= xs[a];
      const auto& x = in(0);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          int64_t best = 0;
          double bv = x[o * len * inner + i];
          for (int64_t j = 1; j < len; ++j) {
            double v = x[(o * len + j) * inner + i];
            if (!std::isnan(bv) && (v > bv || std::isnan(v))) best = j, bv = v;  // first max; NaN wins
          }
          out[o * inner + i] = static_cast<double>(best);
        }
      break;
    }
    case OpKind::MatMul: {
      Sizes as = in_shape(0), bs = in_shape(1);
      int64_t m = as[as.size() - 2], k = as.back(), nn = bs.back();
      Sizes batch(out_shape.begin(), out_shape.end() - 2);
      auto batch_strides = [&](const Sizes& s) {
        Sizes b(s.begin(), s.end() - 2);
        Sizes st = broadcast_strides(b, batch);
        for (int64_t& v : st) v *= s[s.size() - 2] * s.back();
        return st;
      };
      const auto &a = in(0), &b = in(1);
      walk<2>(batch, {batch_strides(as), batch_strides(bs)}, [&](int64_t bi, const std::array<int64_t, 2>& o) {
        double* c = out.data() + bi * m * nn;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < nn; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) s += a[o[0] + i * k + p] * b[o[1] + p * nn + j];
            c[i * nn + j] = s;
          }
      });
      break;
    }
    case OpKind::Reshape:
      out = in(0);
      break;
    case OpKind::Transpose: {
      Sizes xs = in_shape(0), rs = row_major_strides(xs), st(xs.size());
      for (size_t i = 0; i < xs.size(); ++i) st[i] = rs[at.ints[i]];
      const auto& x = in(0);
      walk<1>(out_shape, {st}, [&](int64_t i, const std::array<int64_t, 1>& o) { out[i] = x[o[0]]; });
      break;
    }
    case OpKind::BroadcastTo: {
      const auto& x = in(0);
      walk<1>(out_shape, {broadcast_strides(in_shape(0), out_shape)},
              [&](int64_t i, const std::array<int64_t, 1>& o) { out[i] = x[o[0]]; });
      break;
    }
    case OpKind::Concat:
    case OpKind::Pad: {
      // Each operand is copied into its place in the output.
      int64_t axis = at.ints[0], start = n.op == Op::Pad ? at.ints[1] : 0;
      Sizes ost = row_major_strides(out_shape);
      for (size_t k = 0; k < n.operands.size(); ++k) {
        Sizes xs = in_shape(k);
        const auto& x = in(k);
        int64_t base = start * ost[axis];
        walk<1>(xs, {ost}, [&](int64_t i, const std::array<int64_t, 1>& o) { out[base + o[0]] = x[i]; });
        start += xs[axis];
      }
      break;
    }
    case OpKind::Slice: {
      Sizes xs = in_shape(0), st = row_major_strides(xs);
      int64_t base = at.ints[1] * st[at.ints[0]];
      if (n.op == Op::Reverse) {  // element i of the axis from element size - 1 - i
        int64_t axis = at.ints[0];
        base = (xs[axis] - 1) * st[axis];
        st[axis] = -st[axis];
      }
      const auto& x = in(0);
      walk<1>(out_shape, {st}, [&](int64_t i, const std::array<int64_t, 1>& o) { out[i] = x[base + o[0]]; });
      break;
    }
    case OpKind::OneHot: {
      int64_t classes = at.ints[0];
      const auto& x = in(0);
      for (size_t i = 0; i < x.size(); ++i) {
        double c = x[i];
        if (c < 0 || c >= static_cast<double>(classes))
          throw EvalError(diag::check_class_id_at(c, i, classes), n.loc);
        out[i * classes + static_cast<int64_t>(c)] = 1.0;
      }
      break;
    }
    case OpKind::Window: {
      // window copies each read element; fold, its adjoint, adds each window
      // element into the element it reads, in the windows' row-major order
      bool window = n.op == Op::Window;
      Sizes ws = window ? out_shape : in_shape(0);
      Sizes steps = window_steps(window ? in_shape(0) : out_shape, at.ints);
      const auto& x = in(0);
      if (window) walk<1>(ws, {steps}, [&](int64_t i, const std::array<int64_t, 1>& o) { out[i] = x[o[0]]; });
      else walk<1>(ws, {steps}, [&](int64_t i, const std::array<int64_t, 1>& o) { out[o[0]] += x[i]; });
      break;
    }
    case OpKind::Gather:
    case OpKind::ScatterAdd: {
      // Row ids[i] of the table (embedding) or of the output (embedding_grad), in id order.
      bool gather = n.op == Op::Embedding;
      int64_t rows = gather ? in_shape(1)[0] : at.ints[0], width = out_shape.back();
      const auto &ids = in(0), &x = in(1);
      for (size_t i = 0; i < ids.size(); ++i) {
        double id = ids[i];
        if (id < 0 || id >= static_cast<double>(rows))
          throw EvalError(diag::check_embedding_id_at(id, static_cast<int64_t>(i), rows), n.loc);
        int64_t row = static_cast<int64_t>(id) * width, at_i = static_cast<int64_t>(i) * width;
        for (int64_t d = 0; d < width; ++d) {
          if (gather) out[at_i + d] = x[row + d];
          else out[row + d] += x[at_i + d];
        }
      }
      break;
    }
    case OpKind::Scan: {
      // The body evaluated step by step by an interpreter of its own.
      const Region& r = *at.region;
      const ScanAttrs sa = ScanAttrs::of(at);
      const int64_t m = sa.carries, k = sa.xs, T = sa.length;
      const size_t results = r.results.size();
      std::vector<std::vector<double>> tuple(results);
      for (int64_t i = 0; i < m; ++i) tuple[i] = in(i);
      for (size_t j = m; j < results; ++j) tuple[j].resize(static_cast<size_t>(T * numel(r.body[r.results[j]].shape)));
      for (int64_t s = 0; s < T; ++s) {
        const int64_t t = sa.reverse ? T - 1 - s : s;
        Interpreter body(r.body, promote_);
        for (size_t i = 0; i < r.args.size(); ++i) {
          const auto& v = in(i);
          if (static_cast<int64_t>(i) < m) body.bind_values(r.args[i], tuple[i]);
          else if (static_cast<int64_t>(i) < m + k) {
            const int64_t size = numel(r.body[r.args[i]].shape);
            body.bind_values(r.args[i], std::vector<double>(v.begin() + t * size, v.begin() + (t + 1) * size));
          } else body.bind_values(r.args[i], v);
        }
        body.run(r.results);
        for (size_t j = 0; j < results; ++j) {
          const auto& v = body.values(r.results[j]);
          if (static_cast<int64_t>(j) < m) tuple[j] = v;
          else std::copy(v.begin(), v.end(), tuple[j].begin() + t * static_cast<int64_t>(v.size()));
        }
      }
      tuples_[id] = std::move(tuple);
      break;
    }
    case OpKind::ScanOut:
      out = tuples_.at(n.operands[0]).at(at.ints[0]);
      break;
    case OpKind::Random: {
      const auto &seed = in(0), &step = in(1);
      uint64_t key = static_cast<uint32_t>(static_cast<int32_t>(seed[0])) |
                     uint64_t{static_cast<uint32_t>(static_cast<int32_t>(seed[1]))} << 32;
      auto counter = static_cast<uint32_t>(step[0]);
      auto stream = static_cast<uint32_t>(at.ints[0]);
      for (int64_t i = 0; i < total; ++i) out[i] = random_uniform(key, counter, stream, static_cast<uint64_t>(i));
      break;
    }
  }
  if (n.dtype == DType::F32 && !promote_)
    for (double& v : out) v = static_cast<double>(static_cast<float>(v));
  // A cast to i32 truncates toward zero, saturating, NaN to 0 (LLVM's fptosi.sat).
  if (n.op == Op::Cast && n.dtype == DType::I32)
    for (double& v : out) v = std::isnan(v) ? 0.0 : std::trunc(std::clamp(v, -2147483648.0, 2147483647.0));
  vals_[id] = std::move(out);
  done_[id] = true;
}

}  // namespace gradc
