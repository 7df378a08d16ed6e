// The loops every kernel is made of: counted loops (with values carried
// from one iteration to the next), loops with run-time bounds, loop nests
// over a kernel's dims, conditionals, the bodies that run on the thread pool,
// and the affine indices and addresses inside them. Every loop the emitter
// makes comes from here, so they all have the same shape for LLVM's passes.
#include "compiler/codegen/emitter.h"

#include "compiler/codegen/ir_loop.h"

#include <fmt/format.h>

#include <utility>
#include <llvm/IR/Intrinsics.h>

#include "compiler/support/diagnostics.h"

namespace gradc {

// Runs body(task) for task in [0, n) through the runtime's thread pool:
// the body becomes a function `void (ctx, task, slot)` of its own; ctx
// carries the args and arena pointers and the loop indices `captured` (dims
// of the current kernel whose ivs_ the body uses). slot_ is the thread's
// slot (thread_pool.h) while the body is emitted.
void KernelEmitter::parallel(int64_t n, const std::vector<size_t>& captured, const std::function<void(llvm::Value*)>& body) {
  llvm::Type* i64 = b_.getInt64Ty();
  // args, arena, the loop element step_ (0 outside loops), the captured
  // ivs, then the bases of the views in use (row t of their parents)
  std::vector<size_t> views;
  for (size_t v = 0; v < bases_.size(); ++v)
    if (p_.buffers[v].kind == Buffer::Kind::View && bases_[v]) views.push_back(v);
  auto* ctx_ty = llvm::ArrayType::get(i64, 3 + captured.size() + views.size());
  // The context lives in the entry block's frame (allocas there are static).
  llvm::IRBuilder<> entry_b(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
  llvm::Value* ctx = entry_b.CreateAlloca(ctx_ty, nullptr, "par.ctx");
  auto slot = [&](llvm::IRBuilder<>& b, llvm::Value* base, size_t i) { return b.CreateConstGEP2_64(ctx_ty, base, 0, i); };
  b_.CreateStore(args_, slot(b_, ctx, 0));
  b_.CreateStore(arena_, slot(b_, ctx, 1));
  b_.CreateStore(step_ ? step_ : b_.getInt64(0), slot(b_, ctx, 2));
  for (size_t c = 0; c < captured.size(); ++c) b_.CreateStore(ivs_[captured[c]], slot(b_, ctx, 3 + c));
  for (size_t j = 0; j < views.size(); ++j) b_.CreateStore(bases_[views[j]], slot(b_, ctx, 3 + captured.size() + j));

  auto* fty = llvm::FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), i64, i64}, false);
  auto* f = llvm::Function::Create(fty, llvm::Function::InternalLinkage,
                                   fmt::format("{}.par{}", fn_->getName().str(), outlined_++), m_);
  f->addFnAttr(llvm::Attribute::NoUnwind);
  if (!cpu_.empty()) f->addFnAttr("target-cpu", cpu_);
  if (!features_.empty()) f->addFnAttr("target-features", features_);
  if (wide_) f->addFnAttr("prefer-vector-width", "512");  // (see run())
  // Switch to the new function, run the body, and switch back.
  llvm::Function* saved_fn = fn_;
  llvm::IRBuilderBase::InsertPoint saved_ip = b_.saveIP();
  std::vector<llvm::Value*> saved_bases = bases_, saved_ivs = ivs_;
  llvm::Value *saved_args = args_, *saved_arena = arena_, *saved_slot = slot_, *saved_step = step_;
  fn_ = f;
  b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f));
  llvm::Value* fctx = f->getArg(0);
  args_ = b_.CreateLoad(b_.getPtrTy(), slot(b_, fctx, 0), "args");
  arena_ = b_.CreateLoad(b_.getPtrTy(), slot(b_, fctx, 1), "arena");
  load_bases();
  step_ = step_ ? b_.CreateLoad(i64, slot(b_, fctx, 2), "t") : nullptr;
  for (size_t c = 0; c < captured.size(); ++c) ivs_[captured[c]] = b_.CreateLoad(i64, slot(b_, fctx, 3 + c));
  for (size_t j = 0; j < views.size(); ++j)
    bases_[views[j]] = b_.CreateLoad(b_.getPtrTy(), slot(b_, fctx, 3 + captured.size() + j), "view");
  slot_ = f->getArg(2);
  body(f->getArg(1));
  b_.CreateRetVoid();
  fn_ = saved_fn;
  b_.restoreIP(saved_ip);
  bases_ = std::move(saved_bases);
  ivs_ = std::move(saved_ivs);
  args_ = saved_args;
  arena_ = saved_arena;
  slot_ = saved_slot;
  step_ = saved_step;
  // rt->parallel_for(rt, f, ctx, n)
  auto* pf_ty = llvm::FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), b_.getPtrTy(), b_.getPtrTy(), i64}, false);
  llvm::Value* pf = b_.CreateLoad(b_.getPtrTy(), rt_, "parallel_for");
  b_.CreateCall(pf_ty, pf, {rt_, f, ctx, b_.getInt64(n)});
}

// for (i = lo; i < hi; ++i) body(i), bounds known only at run time.
// Marks the loop that `latch` closes with llvm.loop.vectorize.enable: LLVM
// vectorizes it (with run-time alias checks where it needs them) whatever its
// cost model thinks of a short trip count; or, with `enable` false, leaves it
// scalar whatever the cost model thinks of gathers.
// With `group` (access_group), the loop's iterations are also marked as
// touching memory independently (`enforce` false: that alone, the
// vectorizer's cost model deciding).
void KernelEmitter::force_vectorize(llvm::BranchInst* latch, bool enable_it, llvm::MDNode* group, bool enforce) {
  llvm::Metadata* enable[] = {llvm::MDString::get(ctx_, "llvm.loop.vectorize.enable"),
                              llvm::ConstantAsMetadata::get(enable_it ? b_.getTrue() : b_.getFalse())};
  std::vector<llvm::Metadata*> ops = {nullptr};
  if (enforce) ops.push_back(llvm::MDNode::get(ctx_, enable));
  if (group) {
    llvm::Metadata* parallel[] = {llvm::MDString::get(ctx_, "llvm.loop.parallel_accesses"), group};
    ops.push_back(llvm::MDNode::get(ctx_, parallel));
  }
  if (enforce && enable_it && std::exchange(masked_tail_next_loop_, false)) {
    llvm::Metadata* tail[] = {llvm::MDString::get(ctx_, "llvm.loop.vectorize.predicate.enable"),
                              llvm::ConstantAsMetadata::get(b_.getTrue())};
    ops.push_back(llvm::MDNode::get(ctx_, tail));
  }
  llvm::MDNode* loop_id = llvm::MDNode::getDistinct(ctx_, ops);
  loop_id->replaceOperandWith(0, loop_id);
  latch->setMetadata(llvm::LLVMContext::MD_loop, loop_id);
}

void KernelEmitter::parallel_ranges(int64_t n, const std::vector<size_t>& captured,
                                    const std::function<void(llvm::Value*, llvm::Value*)>& body) {
  int64_t tasks = std::min<int64_t>(n, kMaxRangeTasks), chunk = (n + tasks - 1) / tasks;
  tasks = (n + chunk - 1) / chunk;
  parallel(tasks, captured, [&](llvm::Value* t) {
    llvm::Value* lo = mul(t, chunk);
    body(lo, smin(add(lo, i64(chunk)), i64(n)));
  });
}

// A new access group on the loads and stores of the blocks after `before`
// (a loop just emitted): with llvm.loop.parallel_accesses naming it, the
// loop's iterations touch memory independently, which LLVM cannot prove
// where the buffers are offsets into one arena and read with another
// stride than they are written (a pool's windows), so that it may vectorize.
llvm::MDNode* KernelEmitter::access_group(llvm::BasicBlock* before) {
  llvm::MDNode* group = llvm::MDNode::getDistinct(ctx_, {});
  bool inside = false;
  for (llvm::BasicBlock& bb : *fn_) {
    if (inside)
      for (llvm::Instruction& i : bb)
        if (llvm::isa<llvm::LoadInst>(i) || llvm::isa<llvm::StoreInst>(i)) i.setMetadata(llvm::LLVMContext::MD_access_group, group);
    inside = inside || &bb == before;
  }
  return group;
}

void KernelEmitter::loop_range(llvm::Value* lo, llvm::Value* hi, const std::function<void(llvm::Value*)>& body) {
  const bool vectorize = std::exchange(vectorize_next_loop_, false);
  const bool scalar = std::exchange(scalar_next_loop_, false);
  const bool parallel = std::exchange(parallel_next_loop_, false);
  llvm::BasicBlock* before = &fn_->back();
  llvm::BranchInst* latch = emit_counted_loop(b_, lo, hi, body);
  llvm::MDNode* group = parallel ? access_group(before) : nullptr;
  if (vectorize || scalar || group) force_vectorize(latch, !scalar, group, vectorize || scalar);
}

// if (cond) then();
void KernelEmitter::when(llvm::Value* cond, const std::function<void()>& then) { if_else(cond, then, nullptr); }

// if (cond) then(); else otherwise(); (no else block when `otherwise` is empty)
void KernelEmitter::if_else(llvm::Value* cond, const std::function<void()>& then, const std::function<void()>& otherwise) {
  auto* yes = llvm::BasicBlock::Create(ctx_, "then", fn_);
  auto* no = otherwise ? llvm::BasicBlock::Create(ctx_, "else", fn_) : nullptr;
  auto* done = llvm::BasicBlock::Create(ctx_, "endif", fn_);
  b_.CreateCondBr(cond, yes, no ? no : done);
  b_.SetInsertPoint(yes);
  then();
  b_.CreateBr(done);
  if (no) {
    b_.SetInsertPoint(no);
    otherwise();
    b_.CreateBr(done);
  }
  b_.SetInsertPoint(done);
}

// for (i = 0; i < n; ++i) body(i); n >= 1, so a do-while loop.
void KernelEmitter::loop(int64_t n, const std::function<void(llvm::Value*)>& body) {
  loop_carry(n, {}, [&](llvm::Value* i, const std::vector<llvm::Value*>&) {
    body(i);
    return std::vector<llvm::Value*>{};
  });
}

// acc = init; for (i = 0; i < n; ++i) acc = step(i, acc); returns acc.
llvm::Value* KernelEmitter::loop_acc(int64_t n, llvm::Value* init,
                      const std::function<llvm::Value*(llvm::Value* i, llvm::Value* acc)>& step) {
  return loop_carry(n, {init}, [&](llvm::Value* i, const std::vector<llvm::Value*>& acc) {
    return std::vector<llvm::Value*>{step(i, acc[0])};
  })[0];
}

// The loop both are made of: values carried from one iteration to the next
// (PHIs starting at `init`); returns their values after the last iteration.
std::vector<llvm::Value*> KernelEmitter::loop_carry(int64_t n, const std::vector<llvm::Value*>& init,
                                                    const CarryStep& step) {
  return loop_carry(i64(n), init, step);
}

// The same with a trip count known only at run time (at least 1).
std::vector<llvm::Value*> KernelEmitter::loop_carry(llvm::Value* n, const std::vector<llvm::Value*>& init,
                                                    const CarryStep& step) {
  const bool vectorize = std::exchange(vectorize_next_loop_, false);
  const bool scalar = std::exchange(scalar_next_loop_, false);
  const bool parallel = std::exchange(parallel_next_loop_, false);
  llvm::BasicBlock* before = &fn_->back();
  llvm::BasicBlock* pre = b_.GetInsertBlock();
  auto* header = llvm::BasicBlock::Create(ctx_, "loop", fn_);
  auto* exit = llvm::BasicBlock::Create(ctx_, "after", fn_);
  b_.CreateBr(header);
  b_.SetInsertPoint(header);
  llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2, "i");
  i->addIncoming(b_.getInt64(0), pre);
  std::vector<llvm::PHINode*> phis;
  std::vector<llvm::Value*> carried;
  for (llvm::Value* v : init) {
    phis.push_back(b_.CreatePHI(v->getType(), 2, "acc"));
    phis.back()->addIncoming(v, pre);
    carried.push_back(phis.back());
  }
  std::vector<llvm::Value*> next_values = step(i, carried);
  llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "i.next", true, true);
  i->addIncoming(next, b_.GetInsertBlock());
  for (size_t k = 0; k < phis.size(); ++k) phis[k]->addIncoming(next_values[k], b_.GetInsertBlock());
  llvm::BranchInst* latch = b_.CreateCondBr(b_.CreateICmpSLT(next, n), header, exit);
  llvm::MDNode* group = parallel ? access_group(before) : nullptr;
  if (vectorize || scalar || group) force_vectorize(latch, !scalar, group, vectorize || scalar);
  b_.SetInsertPoint(exit);
  return next_values;
}

// Loops over `order` (dims of k), innermost last; ivs_[d] holds dim d's index.
void KernelEmitter::nest(const Kernel& k, const std::vector<size_t>& order, size_t level, const std::function<void()>& body) {
  if (level == order.size()) return body();
  size_t d = order[level];
  auto next = [&](llvm::Value* i) {
    ivs_[d] = i;
    nest(k, order, level + 1, body);
  };
  if (bounded(d)) return loop_range(i64(0), rows_end(), next);
  loop(k.dims[d], next);
}

void KernelEmitter::bound_rows(const Kernel* k, size_t d, int64_t unit) {
  rows_dim_ = d;
  rows_buffer_ = k ? k->rows_size : -1;
  rows_unit_ = unit;
}

// The same, with the innermost loop marked for vectorization when every
// access walks it element by element (the output, and each load contiguous
// or the same along it) and it is long enough for a vector: short rows such
// as a convolution's 14 columns, which LLVM's cost model leaves scalar. A
// short row that is not a whole number of vectors is one masked vector
// iteration rather than a vector and a scalar remainder (W5's im2col copy
// 2.05 -> 1.60 ms, its fold 2.63 -> 2.21 ms). Each output element still gets
// its operations in the same order.
namespace {
// Ops whose code may be a call of a math library function: a loop of them is
// left to LLVM's cost model, which vectorizes it through the library's vector
// variants where it can; forcing it fails (with a warning) where it cannot.
bool calls_libm(Op op) {
  switch (op) {
    case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sin: case Op::Cos: case Op::Tanh:
    case Op::Sigmoid: case Op::Softplus: case Op::Erf: case Op::Pow:
      return true;
    default:
      return false;
  }
}
}  // namespace

// Whether the iterations of dim d of elementwise kernel k touch memory
// independently: each writes its own output element (the output's stride
// along d is not 0) and no load reads the output's memory (a view of it
// included) other than at the element being written (an update in place).
bool KernelEmitter::independent_iterations(const Kernel& k, size_t d) const {
  if (k.out_map.strides.size() != k.dims.size() || k.out_map.strides[d] == 0) return false;
  const int out = root_buffer(p_.buffers, k.out);
  for (const KExpr& e : k.exprs) {
    if (e.kind != KExpr::Kind::Load || root_buffer(p_.buffers, e.buffer) != out) continue;
    if (e.buffer != k.out || !e.args.empty() || e.map.offset != k.out_map.offset || e.map.step != k.out_map.step ||
        e.map.strides != k.out_map.strides)
      return false;
  }
  return true;
}

namespace {
// The innermost dim's output stride s (2..4) and the dim in `order` whose
// output stride is 1 and extent s: each iteration of the innermost dim
// writes s adjacent elements through that dim (a pool's gradient folded
// back onto its input's rows, [.., KW, .., OW] -> 2*ow + kw), which, unrolled
// in the body, LLVM stores as whole vectors (an interleaved group) where the
// iterations are independent. nullopt otherwise.
std::optional<size_t> interleaved_dim(const Kernel& k, const std::vector<size_t>& order) {
  if (order.size() < 2 || k.out_map.strides.size() != k.dims.size()) return std::nullopt;
  const size_t last = order.back();
  const int64_t s = k.out_map.strides[last];
  if (s < 2 || s > 4 || k.dims[last] < 4) return std::nullopt;
  for (const KExpr& e : k.exprs)
    if (e.kind == KExpr::Kind::Op && e.op == Op::RandomUniform) return std::nullopt;
  for (size_t d : order)
    if (d != last && k.out_map.strides[d] == 1 && k.dims[d] == s) return d;
  return std::nullopt;
}
}  // namespace

void KernelEmitter::nest_vectorized(const Kernel& k, const std::vector<size_t>& order, const std::function<void()>& body) {
  if (order.empty()) return body();
  if (std::optional<size_t> unit_dim = interleaved_dim(k, order);
      unit_dim && !bounded(*unit_dim) && !bounded(order.back()) && independent_iterations(k, order.back())) {
    const size_t last = order.back();
    std::vector<size_t> outer;
    for (size_t d : order)
      if (d != last && d != *unit_dim) outer.push_back(d);
    return nest(k, outer, 0, [&] {
      vectorize_next_loop_ = parallel_next_loop_ = true;
      loop_range(i64(0), i64(k.dims[last]), [&](llvm::Value* i) {
        ivs_[last] = i;
        for (int64_t j = 0; j < k.dims[*unit_dim]; ++j) {
          ivs_[*unit_dim] = i64(j);
          body();
        }
      });
    });
  }
  size_t d = order.back();
  bool unit = k.dims[d] >= 8 && k.out_map.strides.size() == k.dims.size() && k.out_map.strides[d] == 1;
  for (const KExpr& e : k.exprs) {
    if (e.kind == KExpr::Kind::Op && (e.op == Op::RandomUniform || calls_libm(e.op))) unit = false;
    if (e.kind == KExpr::Kind::Load)
      unit = unit && e.args.empty() && e.map.strides.size() == k.dims.size() &&
             (e.map.strides[d] == 0 || e.map.strides[d] == 1);
  }
  std::vector<size_t> outer(order.begin(), order.end() - 1);
  nest(k, outer, 0, [&] {
    // Loads that stay put along the row are made once, before it (kept
    // through the body's fresh expressions: pinned_): a load left inside
    // would need a run-time alias check against the row's stores, which
    // stops LLVM from vectorizing the row at all.
    if (unit) {
      memo_.assign(k.exprs.size(), nullptr);
      for (size_t e = 0; e < k.exprs.size(); ++e) {
        const KExpr& x = k.exprs[e];
        if (x.kind == KExpr::Kind::Load && x.args.empty() && x.buffer != k.out && x.map.strides[d] == 0)
          pinned_.emplace_back(static_cast<int>(e), value(k, static_cast<int>(e)));
      }
    }
    vectorize_next_loop_ = unit;
    masked_tail_next_loop_ = unit && k.dims[d] < 64 && k.dims[d] % 8 != 0;
    parallel_next_loop_ = independent_iterations(k, d);
    auto row = [&](llvm::Value* i) {
      ivs_[d] = i;
      body();
    };
    if (bounded(d)) loop_range(i64(0), rows_end(), row);
    else loop(k.dims[d], row);
    pinned_.clear();
  });
}

llvm::Value* KernelEmitter::index(const Affine& a) {
  llvm::Value* v = b_.getInt64(a.offset);
  if (a.step != 0) {
    GRADC_ASSERT(step_, "an index per loop step outside a loop");
    v = b_.CreateAdd(v, b_.CreateMul(step_, b_.getInt64(a.step), "", true, true), "", true, true);
  }
  for (size_t d = 0; d < a.strides.size(); ++d)
    if (a.strides[d] != 0) v = b_.CreateAdd(v, b_.CreateMul(ivs_[d], b_.getInt64(a.strides[d]), "", true, true), "", true, true);
  return v;
}

llvm::Value* KernelEmitter::address(int buffer, const Affine& a) {
  return b_.CreateInBoundsGEP(type(p_.buffers[buffer].dtype), base(buffer), index(a));
}

}  // namespace gradc
