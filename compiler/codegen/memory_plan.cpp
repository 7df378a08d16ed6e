// Memory planning (see memory_plan.h).
#include "compiler/codegen/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>

namespace gradc {
namespace {

// Whether expression e of kernel k reads buffer b somewhere other than at `at`.
bool reads_elsewhere(const Kernel& k, int e, int b, const Affine* at) {
  const KExpr& x = k.exprs[e];
  if (x.kind == KExpr::Kind::Load && x.buffer == b) return !at || !x.args.empty() || x.map != *at;
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

// The buffers kernel k writes, and those it reads or writes (roots).
std::vector<int> written(const Program& p, const Kernel& k) {
  std::vector<int> w;
  auto add = [&](int b) {
    if (b >= 0) w.push_back(root_buffer(p.buffers, b));
  };
  add(k.out), add(k.pack_b), add(k.partials);
  for (const Kernel::Epilogue& e : k.epilogues) add(e.out);
  return w;
}

std::vector<int> touched(const Program& p, const Kernel& k) {
  std::vector<int> t = written(p, k);
  if (k.a >= 0) t.push_back(root_buffer(p.buffers, k.a));
  if (k.b >= 0) t.push_back(root_buffer(p.buffers, k.b));
  for (const KExpr& e : k.exprs)
    if (e.kind == KExpr::Kind::Load) t.push_back(root_buffer(p.buffers, e.buffer));
  return t;
}

// Whether pool kernel c (a maximum or argmax over a window of several dims)
// can run in the blocks of product h (Kernel::per_block): every load of c
// reads, at one map, the buffer x that h stores row-major as [M, N], and
// that map splits into h's rows, whole segments of columns and the rest
// (see Kernel::pool_span). Sets c's split and returns the segment's columns
// (0: no split). In a capacity compile, c has a row bound exactly where h
// has a column bound: the same size, on the outermost digit of its
// segments, whose term is h's columns per row of the dim (a convolution's
// images); the blocks then stop its windows at the bound (finish in
// emit_gemm.cpp).
int64_t split_pool(const Program& p, const Kernel& h, Kernel& c) {
  if (c.axis_dims < 2 || (c.rows_size >= 0) != (h.cols_size >= 0) || c.body_loop >= 0 || c.out < 0 ||
      p.buffers[c.out].kind != Buffer::Kind::Arena)
    return 0;
  if (c.rows_size >= 0 && (c.rows_size != h.cols_size || c.dims[c.rows_dim] != c.rows_capacity)) return 0;
  const int64_t M = h.dims[0], N = h.dims[1];
  const Affine row_major{0, {N, 1, 0}};
  std::vector<int> stored;
  for (const Kernel::Epilogue& e : h.epilogues)
    if (!e.internal && e.map == row_major) stored.push_back(e.out);
  if (!h.c_blocks && h.out_map == row_major) stored.push_back(h.out);
  const Affine* map = nullptr;
  int x = -1;
  for (const KExpr& e : c.exprs) {
    if (e.kind != KExpr::Kind::Load) continue;
    if (!e.args.empty() || (map && (e.buffer != x || e.map != *map))) return 0;
    x = e.buffer, map = &e.map;
  }
  if (!map || map->offset != 0 || map->step != 0 || std::find(stored.begin(), stored.end(), x) == stored.end()) return 0;
  // Dims by their term of the index: the rows, and the rest from the largest term down.
  int m = -1;
  std::vector<int> rest;
  const int w0 = c.axis, w1 = c.axis + c.axis_dims;
  for (int d = 0; d < static_cast<int>(c.dims.size()); ++d) {
    const int64_t s = map->strides[d];
    if (s < 0) return 0;
    if (d >= w0 && d < w1) continue;
    if (s == N && c.dims[d] == M && m < 0) m = d;
    else if (c.dims[d] > 1) rest.push_back(d);
  }
  if (m < 0) return 0;
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) { return map->strides[a] > map->strides[b]; });
  // The segments: the longest run of the largest terms that is a mixed-radix
  // number over [0, N) in units of its last term, with the rest (and the
  // window) inside one unit.
  for (size_t t = rest.size(); t >= 1; --t) {
    const int64_t span = map->strides[rest[t - 1]];
    bool chain = span > 0 && map->strides[rest[0]] * c.dims[rest[0]] == N;
    for (size_t i = 0; i + 1 < t && chain; ++i)
      chain = map->strides[rest[i]] == map->strides[rest[i + 1]] * c.dims[rest[i + 1]];
    int64_t reach = 0;
    for (int d = 0; d < static_cast<int>(c.dims.size()); ++d)
      if (d != m && std::find(rest.begin(), rest.begin() + static_cast<long>(t), d) == rest.begin() + static_cast<long>(t))
        reach += map->strides[d] * (c.dims[d] - 1);
    if (!chain || reach >= span) continue;
    if (c.rows_size >= 0 && (static_cast<size_t>(rest[0]) != c.rows_dim || map->strides[rest[0]] != h.cols_unit)) return 0;
    // Every tile width of every target fits its C block (pool_block_cols).
    for (int64_t nr : {8, 16, 24, 32, 48, 64})
      if (kMaxTileRows * pool_block_cols(span, nr, kBlockCols) > kCBlockElems) return 0;
    c.pool_m = m;
    c.pool_segments.assign(rest.begin(), rest.begin() + static_cast<long>(t));
    return span;
  }
  return 0;
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

namespace {

// Product k packs all of B into a buffer of its own (Kernel::pack_b), with
// room for any tile's zero padding, instead of block by block.
void pack_b_whole(Program& p, Kernel& k) {
  Buffer b;
  b.kind = Buffer::Kind::Arena;
  b.dtype = p.buffers[static_cast<size_t>(k.b)].dtype;
  b.elems = packed_b_elems(k.dims.back(), k.dims[k.dims.size() - 2]);
  b.name = fmt::format("pack.b.%{}", k.node != kNoNode ? k.node : k.body_node);
  k.pack_b = static_cast<int>(p.buffers.size());
  k.pack_b_per_block = false;
  p.buffers.push_back(std::move(b));
}

}  // namespace

void plan_batch_rows(Program& p) {
  for (Kernel& k : p.kernels) {
    if (k.kind != Kernel::Kind::MatMul || !k.packed || k.b_gather) continue;
    // Every map of the kernel over its dims.
    std::vector<Affine*> maps = {&k.out_map, &k.a_map, &k.b_map};
    for (KExpr& e : k.exprs)
      if (e.map.strides.size() == k.dims.size()) maps.push_back(&e.map);
    for (Kernel::Epilogue& e : k.epilogues) maps.push_back(&e.map);
    bool merged = false;
    // The last batch dim and m merge: i_batch * M + i_m is the new m.
    for (size_t d; k.dims.size() > 3 && dims_merge(maps, k.dims, d = k.dims.size() - 4);) {
      merge_dims(maps, k.dims, d);
      merged = true;
    }
    // Now with many rows, B is packed once rather than block by block.
    if (merged && k.pack_b_per_block && k.dims[k.dims.size() - 3] > kOneBlockRows) pack_b_whole(p, k);
  }
}

void plan_invariant_packing(Program& p) {
  for (Kernel& k : p.kernels) {
    if (k.kind != Kernel::Kind::MatMul || !k.packed || k.body_loop < 0 || k.dims.size() != 3 || k.b_gather || k.k_size >= 0 ||
        k.cols_size >= 0 || (k.pack_b < 0 && !k.pack_b_per_block))
      continue;
    const int b = root_buffer(p.buffers, k.b);
    if (p.buffers[static_cast<size_t>(k.b)].kind == Buffer::Kind::View) continue;  // (a row of a scanned value)
    const Kernel& loop = p.kernels[static_cast<size_t>(k.body_loop)];
    bool invariant = true;
    for (size_t i = static_cast<size_t>(k.body_loop) + 1; i < static_cast<size_t>(loop.loop_end) && invariant; ++i) {
      std::vector<int> w = written(p, p.kernels[i]);
      invariant = std::find(w.begin(), w.end(), b) == w.end();
    }
    if (!invariant) continue;
    if (k.pack_b_per_block) pack_b_whole(p, k);
    k.pack_b_once = true;
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
    // (Rows of at most kCBlockElems / kMaxTileRows elements with padding,
    // so a block of whole rows is at least one row of tiles of any target.)
    const int64_t n = k.dims[k.dims.size() - 2];
    k.row_blocks = k.pack_b >= 0 && k.epilogues.size() >= 2 && (n + kMaxTileCols) * kMaxTileRows <= kCBlockElems;
    int64_t block = kCBlockElems * int64_t(dtype_size(p.buffers[k.out].dtype));
    p.worker_bytes = std::max(p.worker_bytes, block);
  }
}

void plan_pool_epilogues(Program& p) {
  for (size_t hi = 0; hi < p.kernels.size(); ++hi) {
    Kernel& h = p.kernels[hi];
    if (h.kind != Kernel::Kind::MatMul || !h.packed || h.dims.size() != 3 || h.k_segments > 1 ||
        h.rows_size >= 0 || h.k_size >= 0 || h.body_loop >= 0)
      continue;
    size_t at = hi + 1;  // where the next pool kernel goes
    for (size_t j = at; j < p.kernels.size(); ++j) {
      Kernel& c = p.kernels[j];
      // (Kernels are not moved across a loop, whose body has fixed indices,
      // or a run-time check, which must fail before anything after it runs.)
      if (c.kind == Kernel::Kind::Loop || c.kind == Kernel::Kind::CheckRange) break;
      if (c.kind != Kernel::Kind::ArgMax && c.kind != Kernel::Kind::Reduce) continue;
      Kernel trial = c;
      int64_t span = split_pool(p, h, trial);
      if (span == 0 || (h.pool_span != 0 && span != h.pool_span)) continue;
      // Nothing between the host and c writes what c reads or touches what c writes.
      const int x = root_buffer(p.buffers, [&] {
        for (const KExpr& e : c.exprs)
          if (e.kind == KExpr::Kind::Load) return e.buffer;
        return -1;
      }());
      const int out = root_buffer(p.buffers, c.out);
      bool free = true;
      for (size_t i = at; i < j && free; ++i) {
        std::vector<int> w = written(p, p.kernels[i]), t = touched(p, p.kernels[i]);
        free = std::find(w.begin(), w.end(), x) == w.end() && std::find(t.begin(), t.end(), out) == t.end();
      }
      if (!free) continue;
      trial.per_block = true;
      h.pool_span = span;
      h.row_blocks = false;  // (its blocks are whole segments of columns)
      std::rotate(p.kernels.begin() + static_cast<long>(at), p.kernels.begin() + static_cast<long>(j),
                  p.kernels.begin() + static_cast<long>(j) + 1);
      p.kernels[at] = std::move(trial);
      ++at;
    }
  }
}

void plan_arena(Program& p) {
  auto touch = [&](int b, int k) {
    Buffer& buf = p.buffers[root_buffer(p.buffers, b)];
    if (buf.first == -1) buf.first = k;
    buf.last = std::max(buf.last, k);
  };
  int host = 0;
  for (int k_at = 0; k_at < static_cast<int>(p.kernels.size()); ++k_at) {
    const Kernel& k = p.kernels[k_at];
    // (A kernel run in its host's blocks reads and writes while the host runs.)
    if (!k.per_block) host = k_at;
    const int ki = host;
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
