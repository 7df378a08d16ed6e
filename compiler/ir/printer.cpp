// Text and DOT printers for graphs.
#include "compiler/ir/printer.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace gradc {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt::format("{}", v[i]);
  return s + "]";
}

std::string op_attrs_str(const Node& n);

// The op's attributes in brackets, and the name of a named value that grad()
// or jvp() differentiates with respect to (Sema::named): `mul[name=v]`.
std::string attrs_str(const Node& n) {
  std::string s = op_attrs_str(n);
  if (op_kind(n.op) == OpKind::Leaf || n.attrs.name.empty()) return s;
  std::string name = fmt::format("name={}", n.attrs.name);
  return s.empty() ? "[" + name + "]" : s.substr(0, s.size() - 1) + ", " + name + "]";
}

std::string op_attrs_str(const Node& n) {
  const Attrs& a = n.attrs;
  switch (op_kind(n.op)) {
    case OpKind::Reduce:
    case OpKind::ArgMax: return fmt::format("[axes={}{}]", ints_str(a.ints), a.keepdims ? ", keepdims" : "");
    case OpKind::Reshape:
    case OpKind::BroadcastTo: return fmt::format("[shape={}]", ints_str(a.ints));
    case OpKind::Transpose: return fmt::format("[perm={}]", ints_str(a.ints));
    case OpKind::Concat: return fmt::format("[axis={}]", a.ints.at(0));
    case OpKind::Slice:
      if (n.op == Op::Reverse) return fmt::format("[axis={}]", a.ints.at(0));
      return fmt::format("[axis={}, start={}, stop={}]", a.ints.at(0), a.ints.at(1), a.ints.at(2));
    case OpKind::Pad: return fmt::format("[axis={}, before={}, after={}]", a.ints.at(0), a.ints.at(1), a.ints.at(2));
    case OpKind::OneHot: return fmt::format("[n={}]", a.ints.at(0));
    case OpKind::Window: {
      std::vector<int64_t> field[4];
      for (size_t i = 0; i < a.ints.size(); ++i) field[i % 4].push_back(a.ints[i]);
      return fmt::format("[kernel={}, stride={}, dilation={}, size={}]", ints_str(field[0]), ints_str(field[1]),
                         ints_str(field[2]), ints_str(field[3]));
    }
    case OpKind::Cast: return fmt::format("[to={}]", dtype_name(n.dtype));
    case OpKind::ScatterAdd: return fmt::format("[rows={}]", a.ints.at(0));
    case OpKind::Random: return fmt::format("[stream={}]", a.ints.at(0));
    case OpKind::Scan: {
      ScanAttrs sa = ScanAttrs::of(a);
      return fmt::format("[carries={}, xs={}, length={}{}{}]", sa.carries, sa.xs, sa.length, sa.reverse ? ", reverse" : "",
                         sa.checkpoint ? fmt::format(", checkpoint={}", sa.checkpoint) : "");
    }
    case OpKind::ScanOut: return fmt::format("[{}]", a.ints.at(0));
    // no attributes (leaves print theirs in node_str)
    case OpKind::Leaf:
    case OpKind::Unary:
    case OpKind::Binary:
    case OpKind::Compare:
    case OpKind::Select:
    case OpKind::MatMul:
    case OpKind::Gather: return "";
  }
  return "";
}

}  // namespace

std::string node_str(const Graph& g, NodeId id, const std::vector<int>& numbering) {
  const Node& n = g[id];
  if (n.op == Op::Constant) return fmt::format("const {}", n.attrs.value);
  if (n.op == Op::Input || n.op == Op::Param) return fmt::format("{} {}", op_name(n.op), n.attrs.name);
  std::string s = fmt::format("{}{}", op_name(n.op), attrs_str(n));
  for (size_t i = 0; i < n.operands.size(); ++i)
    s += fmt::format("{}%{}", i ? ", " : " ", numbering[n.operands[i]]);
  return s;
}

namespace {

// A scan's body, indented under the scan: its arguments, its nodes (those
// its results need, numbered from 0 in the body), and its results.
std::string print_region(const Region& r, const std::string& indent) {
  const Graph& g = r.body;
  std::vector<bool> need(g.size(), false);
  for (NodeId n : r.results) need[n] = true;
  for (NodeId n : r.args) need[n] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) need[o] = true;
  std::vector<int> num(g.size(), -1);
  int next = 0;
  for (NodeId n : r.args) num[n] = next++;
  for (NodeId n = 0; n < g.size(); ++n)
    if (need[n] && num[n] < 0) num[n] = next++;
  std::string out = indent + "body(";
  for (size_t i = 0; i < r.args.size(); ++i)
    out += fmt::format("{}%{} : {}", i ? ", " : "", num[r.args[i]], type_str(g[r.args[i]].dtype, g[r.args[i]].shape));
  out += ") {\n";
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!need[n] || g[n].op == Op::Input) continue;
    out += fmt::format("{}  %{} : {} = {}\n", indent, num[n], type_str(g[n].dtype, g[n].shape), node_str(g, n, num));
    if (g[n].op == Op::Scan) out += print_region(*g[n].attrs.region, indent + "    ");
  }
  out += indent + "  results";
  for (size_t i = 0; i < r.results.size(); ++i) out += fmt::format("{}%{}", i ? ", " : " ", num[r.results[i]]);
  return out + "\n" + indent + "}\n";
}

}  // namespace

std::string print_graph(const ModelIR& m, const SourceManager& sm, Roots roots) {
  const Graph& g = m.graph;
  std::vector<NodeId> order = live_nodes(m, roots);
  std::vector<int> num(g.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) num[order[i]] = static_cast<int>(i);

  // Annotate nodes with the names users gave them.
  std::map<NodeId, std::string> names;
  for (const NamedNode& v : m.values) names.emplace(v.node, v.name);
  for (const NamedNode& v : m.training.values) names.emplace(v.node, v.name);

  std::string out = fmt::format("graph {} {{\n", m.name);
  if (!m.dims.empty()) {
    out += "  dims";
    std::string stand_ins;
    for (const auto& [name, v] : m.dims) {
      bool dynamic = std::find(m.dynamic_dims.begin(), m.dynamic_dims.end(), name) != m.dynamic_dims.end();
      bool bounded = std::any_of(m.capacities.begin(), m.capacities.end(), [&](const auto& c) { return c.first == name; });
      out += bounded ? fmt::format(" {}<={}", name, v) : dynamic ? fmt::format(" {}=dynamic", name) : fmt::format(" {}={}", name, v);
      if (dynamic && !bounded) stand_ins += fmt::format("{}{}={}", stand_ins.empty() ? "" : ", ", name, v);
    }
    out += "\n";
    // Compiled at capacities (--max): the arrays have the largest sizes.
    if (!m.capacities.empty())
      out += "  # compiled for every size up to the bound of each D<=N (--max): shapes are at the bound; each call's "
             "size is @size.D, its rows @valid.D\n";
    // A call compiles the model for its sizes (SPEC 2.2); what is printed is
    // the model at stand-in sizes, whose constants (a mean's divisor) follow.
    if (!stand_ins.empty()) out += fmt::format("  # printed at the stand-in size {}: sizes and constants that follow from it are that size's\n", stand_ins);
  }
  for (NodeId id : order) {
    const Node& n = g[id];
    std::string line = fmt::format("  %{} : {} = {}", num[id], type_str(n.dtype, n.shape), node_str(g, id, num));
    if (n.op == Op::Param)
      for (const ParamDecl& p : m.params)
        if (p.node == id) line += " ~ " + init_str(p.init);
    for (const ParamDecl& p : m.buffers)
      if (p.node == id) line += " (buffer) ~ " + init_str(p.init);
    std::string note;
    if (auto it = names.find(id); it != names.end()) note = it->second + " ";
    if (n.loc.valid()) {
      LineCol lc = sm.line_col(n.loc.file, n.loc.begin);
      note += fmt::format("@{}:{}", lc.line, lc.column);
    }
    if (!note.empty()) line += fmt::format("{:<{}}# {}", "", line.size() < 56 ? 56 - line.size() : 1, note);
    out += line + "\n";
    if (n.op == Op::Scan) out += print_region(*n.attrs.region, "    ");
  }
  for (const NamedNode& o : m.outputs) out += fmt::format("  output {} = %{}\n", o.name, num[o.node]);
  for (const NamedNode& o : m.metrics) out += fmt::format("  metric {} = %{}\n", o.name, num[o.node]);
  if (m.loss.node != kNoNode) out += fmt::format("  loss = %{}\n", num[m.loss.node]);
  // The roots of grad and train_step where training mode changes them (SPEC 2.7).
  for (size_t i = 0; i < m.training.outputs.size(); ++i)
    if (m.training.outputs[i].node != m.outputs[i].node)
      out += fmt::format("  training output {} = %{}\n", m.training.outputs[i].name, num[m.training.outputs[i].node]);
  if (m.training.loss.node != kNoNode && m.training.loss.node != m.loss.node) out += fmt::format("  training loss = %{}\n", num[m.training.loss.node]);
  if (roots != Roots::Model)
    for (const NamedNode& gr : m.grads) out += fmt::format("  grad.{} = %{}\n", gr.name, num[gr.node]);
  if (roots == Roots::All && m.train.built()) {
    for (size_t i = 0; i < m.params.size(); ++i)
      out += fmt::format("  train_step {} = %{}\n", m.params[i].name, num[m.train.new_params[i]]);
    for (size_t i = 0; i < m.buffers.size(); ++i)
      out += fmt::format("  train_step {} = %{}\n", m.buffers[i].name, num[m.training.new_buffers[i]]);
    for (const StateSlot& sl : m.train.slots)
      out += fmt::format("  train_step {} = %{}\n", sl.tensor, num[sl.out]);
    out += fmt::format("  train_step opt.step = %{}\n", num[m.train.step_out]);
    if (!m.grads.empty() && !train_step_reads_gradients(m))
      out += "  # train_step has no backward pass: none of its nodes is a gradient's (its optimizer reads the loss only)\n";
  }
  out += fmt::format("  optimizer {}(", m.optimizer.name);
  for (size_t i = 0; i < m.optimizer.options.size(); ++i)
    out += fmt::format("{}{}={}", i ? ", " : "", m.optimizer.options[i].first, m.optimizer.options[i].second);
  out += fmt::format(")\n}}\n# {} nodes\n", order.size());
  for (const Remark& r : m.remarks) {
    LineCol lc = sm.line_col(r.loc.file, r.loc.begin);
    out += fmt::format("# @{}:{} {}\n", lc.line, lc.column, r.text);
  }
  return out;
}

bool train_step_reads_gradients(const ModelIR& m) {
  const Graph& g = m.graph;
  auto reach = [&](std::vector<NodeId> stack) {
    std::vector<bool> seen(g.size(), false);
    while (!stack.empty()) {
      NodeId n = stack.back();
      stack.pop_back();
      if (n == kNoNode || seen[n]) continue;
      seen[n] = true;
      for (NodeId o : g[n].operands) stack.push_back(o);
    }
    return seen;
  };
  std::vector<NodeId> forward{m.training.loss.node}, grads, step{m.train.step_out};
  for (const NamedNode& o : m.training.outputs) forward.push_back(o.node);
  for (NodeId b : m.training.new_buffers) forward.push_back(b);
  for (const NamedNode& gr : m.grads) grads.push_back(gr.node);
  for (NodeId p : m.train.new_params) step.push_back(p);
  for (const StateSlot& s : m.train.slots) step.push_back(s.out);
  std::vector<bool> f = reach(forward), gr = reach(grads), s = reach(step);
  // (leaves, constants among them, are anyone's)
  for (NodeId n = 0; n < g.size(); ++n)
    if (s[n] && gr[n] && !f[n] && op_kind(g[n].op) != OpKind::Leaf) return true;
  return false;
}

std::string print_graph_dot(const ModelIR& m, Roots roots) {
  const Graph& g = m.graph;
  std::vector<NodeId> order = live_nodes(m, roots);
  std::vector<int> num(g.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) num[order[i]] = static_cast<int>(i);
  std::string out = fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n", m.name);
  for (NodeId id : order) {
    const Node& n = g[id];
    std::string label = n.op == Op::Constant ? fmt::format("{}", n.attrs.value)
                        : (n.op == Op::Input || n.op == Op::Param)
                            ? fmt::format("{} {}", op_name(n.op), n.attrs.name)
                            : fmt::format("{}{}", op_name(n.op), attrs_str(n));
    const char* style = n.op == Op::Input ? ", style=filled, fillcolor=lightblue"
                        : n.op == Op::Param ? ", style=filled, fillcolor=lightyellow"
                        : n.op == Op::Constant ? ", shape=ellipse" : "";
    out += fmt::format("  n{} [label=\"%{} {}\\n{}\"{}];\n", num[id], num[id], label, type_str(n.dtype, n.shape), style);
    for (NodeId o : n.operands) out += fmt::format("  n{} -> n{};\n", num[o], num[id]);
  }
  auto root = [&](const std::string& what, NodeId id) {
    out += fmt::format("  \"{}\" [shape=plaintext];\n  n{} -> \"{}\";\n", what, num[id], what);
  };
  for (const NamedNode& o : m.outputs) root("output " + o.name, o.node);
  for (const NamedNode& o : m.metrics) root("metric " + o.name, o.node);
  if (m.loss.node != kNoNode) root("loss", m.loss.node);
  if (m.training.loss.node != kNoNode && m.training.loss.node != m.loss.node) root("training loss", m.training.loss.node);
  if (roots != Roots::Model)
    for (const NamedNode& gr : m.grads) root("grad." + gr.name, gr.node);
  if (roots == Roots::All && m.train.built())
    for (size_t i = 0; i < m.params.size(); ++i) root("train_step " + m.params[i].name, m.train.new_params[i]);
  return out + "}\n";
}

}  // namespace gradc
