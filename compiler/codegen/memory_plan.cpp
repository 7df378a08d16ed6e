// Memory planning (see memory_plan.h).
#include "compiler/codegen/memory_plan.h"

#include <algorithm>

namespace gradc {
namespace {

bool same_map(const Affine& a, const Affine& b) {
  return a.offset == b.offset && a.strides == b.strides && a.step == b.step;
}

// Whether expression e of kernel k reads buffer b somewhere other than at `at`.
bool reads_elsewhere(const Kernel& k, int e, int b, const Affine* at) {
  const KExpr& x = k.exprs[e];
  if (x.kind == KExpr::Kind::Load && x.buffer == b) return !at || !x.args.empty() || !same_map(x.map, *at);
  for (int a : x.args)
    if (reads_elsewhere(k, a, b, at)) return true;
  return false;
}

// Whether a kernel other than kernel ki writes or reads buffer b (itself
// or through a view of it).
bool used_outside(const Program& p, int b, size_t ki) {
  auto is_b = [&](int x) { return x >= 0 && root_buffer(p.buffers, x) == b; };
  for (size_t kj = 0; kj < p.kernels.size(); ++kj) {
    const Kernel& o = p.kernels[kj];
    if (kj == ki) continue;
    if (is_b(o.out) || is_b(o.a) || is_b(o.b)) return true;
    for (const Kernel::Epilogue& e : o.epilogues)
      if (is_b(e.out)) return true;
    for (const KExpr& e : o.exprs)
      if (e.kind == KExpr::Kind::Load && is_b(e.buffer)) return true;
  }
  return false;
}

}  // namespace

bool can_update_in_place(const Program& p, int old_b, int new_b) {
  int writer = -1;
  for (int ki = 0; ki < static_cast<int>(p.kernels.size()); ++ki) {
    const Kernel& k = p.kernels[ki];
    bool writes = k.out == new_b;
    for (const Kernel::Epilogue& e : k.epilogues) writes = writes || e.out == new_b;
    if (writes && writer >= 0) return false;
    if (writes) writer = ki;
  }
  if (writer < 0) return false;
  auto is_old = [&](int b) { return b >= 0 && root_buffer(p.buffers, b) == old_b; };
  for (size_t ki = static_cast<size_t>(writer) + 1; ki < p.kernels.size(); ++ki) {
    const Kernel& k = p.kernels[ki];
    if (k.kind == Kernel::Kind::CheckRange || is_old(k.a) || is_old(k.b)) return false;
    for (const KExpr& e : k.exprs)
      if (e.kind == KExpr::Kind::Load && is_old(e.buffer)) return false;
  }
  const Kernel& w = p.kernels[writer];
  if (w.kind == Kernel::Kind::Elementwise) return !reads_elsewhere(w, w.root, old_b, &w.out_map);
  if (w.kind != Kernel::Kind::MatMul || w.out == new_b || w.a == old_b || w.b == old_b) return false;
  size_t j = 0;
  while (w.epilogues[j].out != new_b) ++j;
  for (size_t e = 0; e < w.epilogues.size(); ++e)
    if (reads_elsewhere(w, w.epilogues[e].root, old_b, e <= j ? &w.epilogues[j].map : nullptr)) return false;
  return true;
}

void plan_in_place(Program& p) {
  p.in_place.assign(p.sig.produces.size(), false);
  if (p.sig.kind != EntryKind::TrainStep && p.sig.kind != EntryKind::ApplyUpdate) return;
  for (size_t r = 0; r < p.sig.produces.size(); ++r) {
    for (size_t i = 0; i < p.sig.reads.size(); ++i) {
      if (p.sig.reads[i].name != p.sig.produces[r].name) continue;
      // Read i is buffer i, produced value r buffer reads + r (lowering.cpp numbers the arguments first).
      int old_b = static_cast<int>(i), new_b = static_cast<int>(p.sig.reads.size() + r);
      if (!can_update_in_place(p, old_b, new_b)) break;
      for (Kernel& k : p.kernels) {
        if (k.out == new_b) k.out = old_b;
        for (Kernel::Epilogue& e : k.epilogues)
          if (e.out == new_b) e.out = old_b;
        for (KExpr& e : k.exprs)
          if (e.kind == KExpr::Kind::Load && e.buffer == new_b) e.buffer = old_b;
      }
      for (Buffer& b : p.buffers)
        if (b.kind == Buffer::Kind::View && b.parent == new_b) b.parent = old_b;
      p.in_place[r] = true;
      break;
    }
  }
}

void plan_internal_epilogues(Program& p) {
  for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
    Kernel& k = p.kernels[ki];
    for (size_t i = 0; i < k.epilogues.size(); ++i) {
      int b = k.epilogues[i].out;
      if (p.buffers[b].kind != Buffer::Kind::Arena || k.a == b || k.b == b || k.out == b) continue;
      bool elsewhere = used_outside(p, b, ki);
      // In its own kernel: no other epilogue writes it, and none up to it reads it.
      for (size_t j = 0; j < k.epilogues.size() && !elsewhere; ++j)
        if (j != i && k.epilogues[j].out == b) elsewhere = true;
      for (size_t j = 0; j <= i && !elsewhere; ++j)
        if (reads_elsewhere(k, k.epilogues[j].root, b, nullptr)) elsewhere = true;
      k.epilogues[i].internal = !elsewhere;
    }
  }
}

void plan_product_blocks(Program& p) {
  for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
    Kernel& k = p.kernels[ki];
    if (k.pack_b_per_block)
      p.worker_bytes = std::max(p.worker_bytes, (kCBlockElems + kPanelElems) * int64_t(dtype_size(p.buffers[k.out].dtype)));
    if (!k.packed || k.epilogues.empty() || p.buffers[k.out].kind != Buffer::Kind::Arena) continue;
    bool elsewhere = used_outside(p, k.out, ki);
    for (const Kernel::Epilogue& e : k.epilogues) elsewhere = elsewhere || e.out == k.out;
    if (elsewhere) continue;
    k.c_blocks = true;
    int64_t block = kCBlockElems * int64_t(dtype_size(p.buffers[k.out].dtype));
    p.worker_bytes = std::max(p.worker_bytes, block);
  }
}

void plan_arena(Program& p) {
  auto touch = [&](int b, int k) {
    Buffer& buf = p.buffers[root_buffer(p.buffers, b)];
    if (buf.first == -1) buf.first = k;
    buf.last = std::max(buf.last, k);
  };
  for (int ki = 0; ki < static_cast<int>(p.kernels.size()); ++ki) {
    const Kernel& k = p.kernels[ki];
    if (k.out >= 0 && !k.c_blocks) touch(k.out, ki);
    for (const Kernel::Epilogue& e : k.epilogues)
      if (!e.internal) touch(e.out, ki);
    auto internal = [&](int b) {
      for (const Kernel::Epilogue& e : k.epilogues)
        if (e.internal && e.out == b) return true;
      return false;
    };
    if (k.a >= 0) touch(k.a, ki);
    if (k.b >= 0) touch(k.b, ki);
    if (k.pack_b >= 0) touch(k.pack_b, ki);
    if (k.k_segments > 1) touch(k.partials, ki);
    for (const KExpr& e : k.exprs)
      if (e.kind == KExpr::Kind::Load && !(k.c_blocks && e.buffer == k.out) && !internal(e.buffer)) touch(e.buffer, ki);
  }
  // A buffer a loop's body uses is live through the whole loop: a later
  // step reads what an earlier one wrote (the carries), and every step
  // reads what came before the loop (the captures).
  for (int ki = static_cast<int>(p.kernels.size()); ki-- > 0;) {
    const Kernel& k = p.kernels[ki];
    if (k.kind != Kernel::Kind::Loop) continue;
    for (Buffer& buf : p.buffers)
      if (buf.first >= 0 && buf.first < k.loop_end && buf.last > ki) {
        buf.first = std::min(buf.first, ki);
        buf.last = std::max(buf.last, k.loop_end - 1);
      }
  }
  std::vector<int> arena;
  for (int b = 0; b < static_cast<int>(p.buffers.size()); ++b)
    if (p.buffers[b].kind == Buffer::Kind::Arena && p.buffers[b].first >= 0) arena.push_back(b);
  std::vector<int> done;
  auto bytes = [&](int b) { return (p.buffers[b].elems * static_cast<int64_t>(dtype_size(p.buffers[b].dtype)) + 63) / 64 * 64; };
  for (int b : arena) {
    Buffer& buf = p.buffers[b];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int o : done) {
      const Buffer& ob = p.buffers[o];
      if (ob.first <= buf.last && buf.first <= ob.last) busy.emplace_back(ob.offset, ob.offset + bytes(o));
    }
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (auto [lo, hi] : busy) {
      if (at + bytes(b) <= lo) break;
      at = std::max(at, hi);
    }
    buf.offset = at;
    done.push_back(b);
    p.arena_bytes = std::max(p.arena_bytes, at + bytes(b));
  }
  for (int ki = 0; ki < static_cast<int>(p.kernels.size()); ++ki) {
    int64_t live = 0;
    for (int b : arena)
      if (p.buffers[b].first <= ki && ki <= p.buffers[b].last) live += bytes(b);
    p.peak_bytes = std::max(p.peak_bytes, live);
  }
  p.placed = true;
}

}  // namespace gradc
