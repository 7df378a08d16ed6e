// The loops printer (see loops_printer.h).
#include "compiler/codegen/loops_printer.h"

#include <fmt/format.h>

namespace gradc {
namespace {

using Sizes = std::vector<int64_t>;

std::string affine_str(const Affine& a) {
  std::string s;
  for (size_t d = 0; d < a.strides.size(); ++d) {
    if (a.strides[d] == 0) continue;
    if (!s.empty()) s += " + ";
    s += a.strides[d] == 1 ? fmt::format("i{}", d) : fmt::format("{}*i{}", a.strides[d], d);
  }
  if (a.step != 0) s += (s.empty() ? "" : " + ") + (a.step == 1 ? std::string("t") : fmt::format("{}*t", a.step));
  if (a.offset != 0 || s.empty()) s += (s.empty() ? "" : " + ") + fmt::format("{}", a.offset);
  return s;
}

// How a gathered B is read (Kernel::b_gather): along k or n, whichever has
// the longer runs, a masked load per run when they are long enough.
std::string gathered_runs(const Kernel& k) {
  if (!k.b_gather) return "";
  const bool along_k = k.gathered_along_k();
  const Kernel::Digits& d = along_k ? k.b_k : k.b_n;
  return Kernel::in_runs(d) ? fmt::format(" along {} in runs of {}", along_k ? "k" : "n", Kernel::run(d))
                            : fmt::format(" along {} by vector gathers", along_k ? "k" : "n");
}

// A gathered operand's index (Kernel::Digits) of loop variable i<d>: each
// digit as a quotient and remainder, times its stride.
std::string digits_str(const Kernel::Digits& g, size_t d) {
  std::string s;
  int64_t below = 1;
  std::vector<std::string> terms;
  for (size_t j = g.radix.size(); j-- > 0;) {
    std::string q = fmt::format("i{}", d);
    if (below > 1) q = fmt::format("{}/{}", q, below);
    if (j > 0) q = fmt::format("{}%{}", q, g.radix[j]);
    below *= g.radix[j];
    if (g.stride[j] == 0) continue;
    terms.push_back(g.stride[j] == 1 ? q : fmt::format("{}*({})", g.stride[j], q));
  }
  for (size_t j = terms.size(); j-- > 0;) s += (s.empty() ? "" : " + ") + terms[j];
  if (g.offset != 0 || s.empty()) s += (s.empty() ? "" : " + ") + fmt::format("{}", g.offset);
  return s;
}

std::string expr_str(const Program& p, const Kernel& k, int e) {
  const KExpr& x = k.exprs[e];
  switch (x.kind) {
    case KExpr::Kind::Load:
      if (!x.args.empty())
        return fmt::format("b{}[{} + {} * {}]", x.buffer, affine_str(x.map), expr_str(p, k, x.args[0]), x.row_stride);
      return fmt::format("b{}[{}]", x.buffer, affine_str(x.map));
    case KExpr::Kind::Const: return fmt::format("{}", x.value);
    case KExpr::Kind::Index: return fmt::format("({})", affine_str(x.map));
    case KExpr::Kind::Op: {
      std::string s = fmt::format("{}(", op_name(x.op));
      if (x.op == Op::Cast) s = fmt::format("cast<{}>(", dtype_name(x.dtype));
      for (size_t i = 0; i < x.args.size(); ++i) s += (i ? ", " : "") + expr_str(p, k, x.args[i]);
      return s + ")";
    }
  }
  return "?";
}

std::string loops_str(const Sizes& dims) {
  if (dims.empty()) return "once";
  std::string s = "for ";
  for (size_t d = 0; d < dims.size(); ++d) s += fmt::format("{}i{} < {}", d ? ", " : "", d, dims[d]);
  return s;
}

// "i3 < b0 (the call's size)", or with `unit` iterations of the loop per
// row of the dim, "i1 < 36 * b0 (36 per row of the call's size)".
std::string size_bound_str(size_t dim, int64_t unit, int size) {
  if (unit == 1) return fmt::format("i{} < b{} (the call's size)", dim, size);
  return fmt::format("i{} < {} * b{} ({} per row of the call's size)", dim, unit, size, unit);
}

std::string row_bound_str(const Kernel& k) {
  return size_bound_str(k.rows_dim, k.dims[k.rows_dim] / k.rows_capacity, k.rows_size);
}

}  // namespace

std::string kernel_summary(const Program& p, size_t ki) {
  const Kernel& k = p.kernels.at(ki);
  std::string dims;
  for (int64_t d : k.dims) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  if (dims.empty()) dims = "1";
  switch (k.kind) {
    case Kernel::Kind::Elementwise: return "elementwise " + dims;
    case Kernel::Kind::Reduce:
      return fmt::format("reduce {} {}", k.reduce_op == Op::ReduceSum ? "sum" : k.reduce_op == Op::ReduceMax ? "max" : "min", dims);
    case Kernel::Kind::ArgMax: return "argmax " + dims;
    case Kernel::Kind::CheckRange: return "id check " + dims;
    case Kernel::Kind::ScatterAdd: return "scatter-add " + dims;
    case Kernel::Kind::Loop: return fmt::format("loop {}{}", dims, k.reverse ? " reversed" : "");
    case Kernel::Kind::MatMul: {
      std::string s = "matmul " + dims;
      if (!k.epilogues.empty()) s += fmt::format(", {} epilogue{}", k.epilogues.size(), k.epilogues.size() > 1 ? "s" : "");
      size_t pools = 0;
      while (ki + 1 + pools < p.kernels.size() && p.kernels[ki + 1 + pools].per_block) ++pools;
      if (pools > 0) s += fmt::format(", {} pool epilogue{}", pools, pools > 1 ? "s" : "");
      return s;
    }
  }
  return dims;
}

std::string print_program(const Program& p) {
  std::string s = fmt::format("entry {}: {} kernels, {} buffers, arena {} bytes, peak live {} bytes{}{}\n",
                              entry_name(p.sig.kind), p.kernels.size(), p.buffers.size(), p.arena_bytes, p.peak_bytes,
                              p.worker_bytes ? fmt::format(", {} bytes per thread", p.worker_bytes) : "",
                              p.profile ? ", timed per kernel" : "");
  for (size_t b = 0; b < p.buffers.size(); ++b) {
    const Buffer& buf = p.buffers[b];
    if (p.placed && buf.first < 0 && buf.kind == Buffer::Kind::Arena) continue;  // never used
    std::string where = buf.kind == Buffer::Kind::View ? fmt::format("view of b{} at {}*t ({})", buf.parent, buf.step, buf.name)
                        : buf.kind == Buffer::Kind::Arg ? fmt::format("arg {} '{}'", buf.arg, buf.name)
                        : p.placed                    ? fmt::format("arena @{} ({})", buf.offset, buf.name)
                                                      : fmt::format("arena, not placed yet ({})", buf.name);
    size_t reads = p.sig.reads.size();
    if (buf.kind == Buffer::Kind::Arg && static_cast<size_t>(buf.arg) >= reads && !p.in_place.empty() &&
        p.in_place[buf.arg - reads])
      for (size_t i = 0; i < reads; ++i)
        if (p.sig.reads[i].name == buf.name) where += fmt::format(" (not used: updated in place in b{})", i);
    s += fmt::format("  b{:<3} {} x {:<8} {}\n", b, dtype_name(buf.dtype), buf.elems, where);
  }
  // A loop's body is indented under it, one level per enclosing loop.
  std::vector<int> ends;
  size_t host = 0;
  for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
    const Kernel& k = p.kernels[ki];
    if (!k.per_block) host = ki;
    const std::string in_blocks =
        k.per_block ? fmt::format("      in k{}'s blocks, after its epilogues   (pool epilogue)\n", host) : "";
    while (!ends.empty() && static_cast<int>(ki) >= ends.back()) ends.pop_back();
    std::string indent(2 * ends.size(), ' ');
    s += indent;
    switch (k.kind) {
      case Kernel::Kind::Loop:
        s += fmt::format("  k{} loop t < {}{}: kernels k{}..k{} at each t\n", ki, k.dims[0],
                         k.reverse ? " (t from the last)" : "", ki + 1, k.loop_end - 1);
        ends.push_back(k.loop_end);
        break;
      case Kernel::Kind::Elementwise:
        s += fmt::format("  k{} {}: b{}[{}] = {}\n", ki, loops_str(k.dims), k.out, affine_str(k.out_map),
                         expr_str(p, k, k.root));
        if (k.rows_size >= 0)
          s += fmt::format("      {} only; rows past it not computed   (row bound)\n", row_bound_str(k));
        break;
      case Kernel::Kind::Reduce:
        s += fmt::format("  k{} {}: b{}[{}] {}= {}{}\n", ki, loops_str(k.dims), k.out, affine_str(k.out_map),
                         k.reduce_op == Op::ReduceSum ? "+" : k.reduce_op == Op::ReduceMax ? "max" : "min",
                         expr_str(p, k, k.root),
                         k.axis_dims > 1 ? fmt::format("   (over the window i{}..i{}, unrolled)", k.axis,
                                                       k.axis + k.axis_dims - 1)
                                         : "");
        s += in_blocks;
        if (k.rows_size >= 0)
          s += fmt::format("      {} only{}   (row bound)\n", row_bound_str(k),
                           k.out_map.strides[0] == 0 ? "; what it adds past it is 0" : "; rows past it not computed");
        break;
      case Kernel::Kind::ArgMax: {
        std::string axes = fmt::format("i{}", k.axis);
        for (int d = k.axis + 1; d < k.axis + k.axis_dims; ++d) axes += fmt::format(", i{}", d);
        s += fmt::format("  k{} {}: b{}[{}] = argmax over {} of {}\n", ki, loops_str(k.dims), k.out,
                         affine_str(k.out_map), axes, expr_str(p, k, k.root));
        s += in_blocks;
        if (k.rows_size >= 0)
          s += fmt::format("      {} only; rows past it not computed   (row bound)\n", row_bound_str(k));
        break;
      }
      case Kernel::Kind::MatMul:
        s += fmt::format("  k{} {}: b{}[{}] += b{}[{}] * b{}[{}]   (matmul, {})\n", ki, loops_str(k.dims), k.out,
                         affine_str(k.out_map), k.a, affine_str(k.a_map), k.b,
                         k.b_gather ? fmt::format("{} + {}", digits_str(k.b_k, k.dims.size() - 1),
                                                  digits_str(k.b_n, k.dims.size() - 2))
                                    : affine_str(k.b_map),
                         !k.packed         ? std::string("tiled")
                         : fmt::format("register-tiled, {}{}, parallel blocks{}{}",
                                       k.pack_b_once        ? fmt::format("B packed into b{} at the loop's first step", k.pack_b)
                                       : k.pack_b >= 0      ? fmt::format("B {} into b{}", k.b_gather ? "gathered" : "packed", k.pack_b)
                                       : k.pack_b_per_block ? std::string(k.b_gather ? "B gathered per block" : "B packed per block")
                                                            : std::string("operands read in place"),
                                       gathered_runs(k),
                                       k.k_segments > 1 ? fmt::format(" x {} k segments summed from b{}", k.k_segments, k.partials) : "",
                                       k.c_blocks ? (k.row_blocks ? ", C in per-thread blocks of whole rows" : ", C in per-thread blocks") : ""));
        for (const Kernel::Epilogue& e : k.epilogues)
          s += fmt::format("      then per block: b{}[{}] = {}   (epilogue{})\n", e.out, affine_str(e.map),
                           expr_str(p, k, e.root), e.internal ? ", in registers" : "");
        if (k.pool_span > 0) {
          std::string pools;
          for (size_t c = ki + 1; c < p.kernels.size() && p.kernels[c].per_block; ++c)
            pools += fmt::format("{}k{}", pools.empty() ? "" : ", ", c);
          s += fmt::format("      then per block: {} over its windows   (pool epilogues; blocks of whole {}-column segments)\n",
                           pools, k.pool_span);
        }
        if (k.k_size >= 0)
          s += fmt::format("      k {}{} only; an operand is 0 past it   (k bound)\n",
                           size_bound_str(k.dims.size() - 1, k.k_unit, k.k_size),
                           k.k_period ? fmt::format(" in each block of {}", k.k_period) : "");
        if (k.cols_size >= 0)
          s += fmt::format("      columns {} only; columns past it not computed   (column bound)\n",
                           size_bound_str(k.dims.size() - 2, k.cols_unit, k.cols_size));
        if (k.rows_size >= 0)
          s += fmt::format("      rows {} only; rows past it {}   (row bound)\n",
                           size_bound_str(k.dims.size() - 3, k.dims[k.dims.size() - 3] / k.rows_capacity, k.rows_size),
                           !k.rows_fill ? "not computed" : k.rows_zero ? "set to 0" : "copies of row 0");
        break;
      case Kernel::Kind::CheckRange:
        s += fmt::format("  k{} {}: check 0 <= {} < {} (else status {})\n", ki, loops_str(k.dims),
                         expr_str(p, k, k.root), k.init, k.check_id);
        break;
      case Kernel::Kind::ScatterAdd:
        s += fmt::format("  k{} {}: b{}[{} + {} * {}] += {}   (in loop order)\n", ki, loops_str(k.dims), k.out,
                         affine_str(k.out_map), expr_str(p, k, k.row), k.row_stride, expr_str(p, k, k.root));
        if (k.rows_size >= 0)
          s += fmt::format("      {} only; what it adds past it is 0   (row bound)\n", row_bound_str(k));
        break;
    }
  }
  return s;
}

}  // namespace gradc
