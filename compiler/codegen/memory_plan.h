// Memory planning, the kernel planner's last steps: which produced values
// overwrite the values they replace, which epilogue values and product
// results never go to memory, and the offsets of the arena's buffers. Each
// step reads and rewrites the lowered Program (lowering.h) alone, so each
// is a function of its own, printable after it runs.
#pragma once

#include "compiler/codegen/loop_ir.h"

namespace gradc {

// Whether the kernels may write produced buffer new_b over read buffer old_b
// (a param or optimizer state and its new value): exactly one kernel writes
// new_b, elementwise, and
//  - no kernel after it reads old_b, and no run-time check runs after it (a
//    failed check must leave every param as it was);
//  - in that kernel, old_b is read only at the element being written: by its
//    expression, or by a product's epilogues up to the one that writes new_b
//    (not by later epilogues, and not as an operand of the product).
bool can_update_in_place(const Program& p, int old_b, int new_b);

// train_step: each new param and optimizer state is written over the old
// one (the read of the same name) where can_update_in_place allows it, so
// a step moves less memory (no second copy to write) and a session holds
// its state once (Program::in_place).
void plan_in_place(Program& p);

// An epilogue value that only later epilogues of its kernel read (and no
// other kernel) is internal: kept in registers, never stored.
void plan_internal_epilogues(Program& p);

// A register-tiled product over batch dims whose last batch dim steps over
// whole matrices of A and C, one row after another, and not over B (a
// recurrent layer's input projection for every step, [T, B, E] x [E, 3H]:
// B is the same weight for each t) is one product over the rows of all of
// them: T products of B rows become one of T*B rows, which packs B once
// instead of once per matrix and cuts its rows into blocks for the
// threads. Each element is summed over k in the same order, so the bits are
// the same. (Not in a capacity compile, whose row bounds name the dims.)
void plan_batch_rows(Program& p);

// A register-tiled product in a loop's body whose B does not change in the
// loop (a recurrent weight, captured) packs B once, at the loop's first
// element, into a buffer live through the loop (Kernel::pack_b_once),
// instead of at every element: W6's forward recurrent product packed its
// 768 x 256 weight 64 times a step. Not with bounds on k or the columns.
void plan_invariant_packing(Program& p);

// Register-tiled products whose result only their own epilogues read (a
// bias and activation, an optimizer update) keep C in per-thread blocks
// (Kernel::c_blocks, Program::worker_bytes).
void plan_product_blocks(Program& p);

// A pool's maximum and argmax over windows of a register-tiled product's
// stored result run in the product's blocks (Kernel::per_block, pool_span),
// moved to right after it where no kernel in between conflicts. In a
// capacity compile, a product with a column bound (a convolution's images)
// hosts pools bounded on the same dim: its blocks stop their windows at the
// call's columns. Not with row bounds, k segments, or in a loop's body.
void plan_pool_epilogues(Program& p);

// Arena buffers get offsets by liveness: first fit among the buffers alive
// at the same time (Buffer::first, last, offset; Program::arena_bytes,
// peak_bytes, placed).
void plan_arena(Program& p);

}  // namespace gradc
