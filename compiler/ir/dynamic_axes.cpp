// The dynamic-axis analysis (see dynamic_axes.h): one rule per op kind.
#include "compiler/ir/dynamic_axes.h"

#include <fmt/format.h>

#include <algorithm>

#include "compiler/support/diagnostics.h"

namespace gradc {

DynamicAxes::DynamicAxes(const Graph& g, std::vector<std::pair<std::string, int64_t>> dims, bool refuse_mixing)
    : g_(&g), dims_(std::move(dims)), refuse_mixing_(refuse_mixing) {}

bool DynamicAxes::refuse(const Node& n, std::string what) {
  if (why_.empty()) why_ = fmt::format("{} ({} {})", what, op_info(n.op).spelling, type_str(n.dtype, n.shape));
  return false;
}

const std::vector<DynAxis>* DynamicAxes::of(NodeId id) {
  if (memo_.size() < g_->size()) memo_.resize(g_->size()), done_.resize(g_->size());
  if (done_[id]) return memo_[id] ? &*memo_[id] : nullptr;
  // Operands first, without recursion (ids are topological).
  std::vector<NodeId> stack{id};
  while (!stack.empty()) {
    NodeId n = stack.back();
    bool ready = true;
    for (NodeId o : (*g_)[n].operands)
      if (!done_[o]) stack.push_back(o), ready = false;
    if (!ready) continue;
    stack.pop_back();
    if (done_[n]) continue;
    auto seeded = seeds_.find(n);
    memo_[n] = seeded != seeds_.end() ? std::optional(seeded->second) : infer(n, (*g_)[n]);
    done_[n] = true;
  }
  return memo_[id] ? &*memo_[id] : nullptr;
}

void DynamicAxes::seed(NodeId leaf, std::vector<DynAxis> facts) { seeds_[leaf] = std::move(facts); }

std::optional<std::vector<std::vector<DynAxis>>> DynamicAxes::scan_results(NodeId id, const Node& scan) {
  using Facts = std::vector<DynAxis>;
  const Region& r = *scan.attrs.region;
  ScanAttrs sa = ScanAttrs::of(scan.attrs);
  std::vector<Facts> args;
  for (size_t i = 0; i < scan.operands.size(); ++i) {
    Facts f = *memo_[scan.operands[i]];
    bool sliced = static_cast<int64_t>(i) >= sa.carries && static_cast<int64_t>(i) < sa.carries + sa.xs;
    if (sliced) {
      if (f.front().dim >= 0) return refuse(scan, "a scan over a dynamic axis"), std::nullopt;
      f.erase(f.begin());
    }
    args.push_back(std::move(f));
  }
  // A carry holds a dim when its initial value or the body's new value does
  // (an initial value made of the capacity's size, zeros of [B, H], holds it
  // by coincidence): analyze until the carries agree.
  for (int round = 0;; ++round) {
    auto analysis = std::make_unique<DynamicAxes>(r.body, dims_, refuse_mixing_);
    DynamicAxes& body = *analysis;
    for (size_t i = 0; i < args.size(); ++i) body.seed(r.args[i], args[i]);
    // The body runs as it is (the masking pass does not enter it): it may
    // not combine rows along a dynamic axis.
    for (NodeId id = 0; id < r.body.size(); ++id) {
      const Node& n = r.body[id];
      if (!body.of(id)) return refuse(scan, "in a scan's body, " + body.why()), std::nullopt;
      bool mixes = false;
      switch (op_kind(n.op)) {
        case OpKind::Reduce:
        case OpKind::ArgMax:
          mixes = !body.dynamic_among(n.operands[0], n.attrs.ints).empty();
          break;
        case OpKind::MatMul:
          mixes = !body.dynamic_among(n.operands[0], {r.body[n.operands[0]].rank() - 1}).empty() ||
                  !body.dynamic_among(n.operands[1], {r.body[n.operands[1]].rank() - 2}).empty();
          break;
        case OpKind::ScatterAdd: {
          const Facts& ids = *body.of(n.operands[0]);
          mixes = std::any_of(ids.begin(), ids.end(), [](const DynAxis& a) { return a.dim >= 0; });
          break;
        }
        default:
          break;
      }
      if (mixes && refuse_mixing_)
        return refuse(scan, fmt::format("a scan whose body combines values along a dynamic axis ({})",
                                        op_info(n.op).spelling)),
               std::nullopt;
    }
    bool agree = true;
    for (int64_t i = 0; i < sa.carries; ++i) {
      const Facts& now = *body.of(r.results[i]);
      for (size_t a = 0; a < now.size(); ++a) {
        if (now[a] == args[i][a] || now[a].dim < 0) continue;
        if (args[i][a].dim >= 0 || round > 4) return refuse(scan, "a scan whose carry changes its dynamic dims"), std::nullopt;
        args[i][a] = now[a];
        agree = false;
      }
    }
    if (!agree) continue;
    std::vector<Facts> out;
    for (NodeId result : r.results) out.push_back(*body.of(result));
    bodies_[id] = std::move(analysis);
    return out;
  }
}

std::vector<std::pair<int64_t, DynAxis>> DynamicAxes::dynamic_among(NodeId operand, const std::vector<int64_t>& axes) {
  std::vector<std::pair<int64_t, DynAxis>> out;
  const std::vector<DynAxis>* f = of(operand);
  if (!f) return out;
  for (int64_t a : axes)
    if ((*f)[a].dim >= 0) out.emplace_back(a, (*f)[a]);
  return out;
}

std::optional<std::vector<DynAxis>> DynamicAxes::infer(NodeId id, const Node& n) {
  using Facts = std::vector<DynAxis>;
  std::vector<const Facts*> in;
  for (NodeId o : n.operands) {
    in.push_back(memo_[o] ? &*memo_[o] : nullptr);
    if (!in.back()) return std::nullopt;  // refused below it
  }
  Facts out(n.shape.size());
  auto any_dynamic = [](const Facts& f) {
    for (const DynAxis& a : f)
      if (a.dim >= 0) return true;
    return false;
  };
  // Right-aligned broadcasting: an axis holds B when an operand's axis of
  // the same (non-1) size does; a static axis of the same size only meets
  // B where the size coincides with the capacity (a random tensor's, a
  // filled one's), since the model was checked at a stand-in size first.
  auto merge = [&](Facts& into, const Shape& into_shape, const Facts& f, const Shape& shape) {
    int lead = static_cast<int>(into_shape.size()) - static_cast<int>(shape.size());
    for (size_t a = 0; a < shape.size(); ++a) {
      DynAxis& o = into[lead + static_cast<int>(a)];
      if (f[a].dim < 0 || shape[a].size != into_shape[lead + a].size) continue;
      if (o.dim >= 0 && !(o == f[a])) return refuse(n, "two dynamic dims meet along one axis");
      o = f[a];
    }
    return true;
  };
  switch (op_kind(n.op)) {
    case OpKind::Leaf:
      if (n.op != Op::Input) return out;
      for (size_t a = 0; a < n.shape.size(); ++a) {
        if (!n.shape[a].dynamic) continue;
        for (size_t d = 0; d < dims_.size(); ++d)
          if (dims_[d].first == n.shape[a].name) out[a] = {static_cast<int>(d), 1};
      }
      return out;
    case OpKind::Unary:
    case OpKind::Cast:
      return *in[0];
    case OpKind::Binary:
    case OpKind::Compare:
    case OpKind::Select:
    case OpKind::BroadcastTo:
      for (size_t i = 0; i < in.size(); ++i)
        if (!merge(out, n.shape, *in[i], (*g_)[n.operands[i]].shape)) return std::nullopt;
      return out;
    case OpKind::Reduce:
    case OpKind::ArgMax: {
      // (the masking pass makes a reduction over B exact)
      out.clear();
      const Facts& x = *in[0];
      for (size_t a = 0; a < x.size(); ++a) {
        bool reduced = std::find(n.attrs.ints.begin(), n.attrs.ints.end(), static_cast<int64_t>(a)) != n.attrs.ints.end();
        if (!reduced) out.push_back(x[a]);
        else if (n.attrs.keepdims) out.push_back({});
      }
      return out;
    }
    case OpKind::MatMul: {
      // (a contraction over B is masked like a reduction)
      const Facts &x = *in[0], &y = *in[1];
      const Shape &xs = (*g_)[n.operands[0]].shape, &ys = (*g_)[n.operands[1]].shape;
      size_t r = out.size();
      Facts xb(x.begin(), x.end() - 2), yb(y.begin(), y.end() - 2);
      Shape xbs(xs.begin(), xs.end() - 2), ybs(ys.begin(), ys.end() - 2), outb(n.shape.begin(), n.shape.end() - 2);
      Facts batch(r - 2);
      if (!merge(batch, outb, xb, xbs) || !merge(batch, outb, yb, ybs)) return std::nullopt;
      std::copy(batch.begin(), batch.end(), out.begin());
      out[r - 2] = x[x.size() - 2];
      out[r - 1] = y[y.size() - 1];
      return out;
    }
    case OpKind::Reshape: {
      const Shape& xs = (*g_)[n.operands[0]].shape;
      std::vector<int64_t> is = row_major_strides(sizes(xs)), os = row_major_strides(sizes(n.shape));
      for (size_t a = 0; a < xs.size(); ++a) {
        const DynAxis& f = (*in[0])[a];
        if (f.dim < 0) continue;
        int64_t c = dims_[f.dim].second, stride = is[a] * f.inner;  // B's flat stride
        bool placed = false;
        for (size_t j = 0; j < n.shape.size() && !placed; ++j) {
          int64_t size = n.shape[j].size;
          if (stride % os[j] != 0 || stride < os[j] || stride * c > os[j] * size) continue;
          int64_t inner = stride / os[j];
          if (size % (inner * c) != 0) continue;
          if (out[j].dim >= 0) return refuse(n, "a reshape merges two dynamic dims into one axis"), std::nullopt;
          out[j] = {f.dim, inner}, placed = true;
        }
        if (!placed) return refuse(n, fmt::format("a reshape splits the dynamic dim {}", dims_[f.dim].first)), std::nullopt;
      }
      return out;
    }
    case OpKind::Transpose:
      for (size_t a = 0; a < out.size(); ++a) out[a] = (*in[0])[n.attrs.ints[a]];
      return out;
    case OpKind::Concat: {
      int64_t axis = n.attrs.ints[0];
      for (size_t i = 0; i < in.size(); ++i) {
        if ((*in[i])[axis].dim >= 0) return refuse(n, "a concat along a dynamic axis"), std::nullopt;
        if (!merge(out, n.shape, *in[i], n.shape)) return std::nullopt;  // same rank, same sizes but the axis
      }
      return out;
    }
    case OpKind::Slice:
    case OpKind::Pad:
      if ((*in[0])[n.attrs.ints[0]].dim >= 0)
        return refuse(n, fmt::format("a {} along a dynamic axis", op_info(n.op).spelling)), std::nullopt;
      out = *in[0];
      return out;
    case OpKind::OneHot:
      std::copy(in[0]->begin(), in[0]->end(), out.begin());
      return out;
    case OpKind::Window:
      for (size_t a = 2; a < in[0]->size(); ++a)
        if ((*in[0])[a].dim >= 0)
          return refuse(n, fmt::format("a {} over a dynamic axis", op_info(n.op).spelling)), std::nullopt;
      out[0] = (*in[0])[0], out[1] = (*in[0])[1];
      return out;
    case OpKind::Gather:
      if (any_dynamic(*in[1])) return refuse(n, "an embedding table with a dynamic dim"), std::nullopt;
      std::copy(in[0]->begin(), in[0]->end(), out.begin());
      return out;
    case OpKind::ScatterAdd:
      // (the masking pass makes a scatter over B exact: its rows of g past
      // the bound size add nothing)
      for (size_t a = 0; a < in[0]->size(); ++a)
        if (!((*in[0])[a] == (*in[1])[a]) && (*in[1])[a].dim >= 0)
          return refuse(n, "a scatter whose ids and rows disagree on a dynamic axis"), std::nullopt;
      if (in[1]->back().dim >= 0) return refuse(n, "a scatter of rows along a dynamic axis"), std::nullopt;
      return out;
    case OpKind::Random:
      return out;
    case OpKind::Scan: {
      bool any = false;
      for (const Facts* f : in) any = any || any_dynamic(*f);
      if (!any) return out;  // (nothing to analyze in the body)
      auto results = scan_results(id, n);
      if (!results) return std::nullopt;
      scans_[id] = std::move(*results);
      return out;
    }
    case OpKind::ScanOut: {
      auto it = scans_.find(n.operands[0]);
      if (it == scans_.end()) return out;
      int64_t i = n.attrs.ints[0];
      const Facts& f = it->second[i];
      bool stacked = i >= ScanAttrs::of((*g_)[n.operands[0]].attrs).carries;
      std::copy(f.begin(), f.end(), out.begin() + (stacked ? 1 : 0));
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace gradc
