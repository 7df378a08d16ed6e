// The C ABI of an exported model as data (internal to export.cpp and
// export_header.cpp): the structs of the model's tensors and their layout,
// where each entry's arguments point, and the work area. export.cpp fills it
// and emits the object's wrappers from it; export_header.cpp prints it as the
// C header. Plain C++.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "compiler/codegen/loop_ir.h"

namespace gradc {

// The version of the header's ABI: bumped when a struct's layout rule, an
// entry's parameters or the work area's layout change.
inline constexpr int kAbiVersion = 1;

// The work area starts with the values a train_step cannot update in place
// and continues with the entry's arena; both start on this boundary (the
// arena's own requirement, NativeEntry::arena_bytes).
inline constexpr int64_t kWorkAlign = 64;

inline int64_t align_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

// One tensor in a struct of the header.
struct Field {
  std::string tensor;  // its name in the entry signatures ("W1", "opt.exp_avg.W1", "out.pred", "grad.W1")
  std::string c_name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t offset = 0, bytes = 0;
};

// A struct of the header: the fields in order, each at its natural
// alignment (the C layout rule on every 64-bit target gradc exports for).
struct CStruct {
  explicit CStruct(std::string what) : what(std::move(what)) {}

  std::string what;  // "inputs", "params", ...
  std::vector<Field> fields;
  int64_t size = 0;

  void add(std::string tensor, std::string c_name, DType dtype, std::vector<int64_t> shape) {
    Field f{std::move(tensor), std::move(c_name), dtype, std::move(shape)};
    int64_t elem = static_cast<int64_t>(dtype_size(dtype)), n = 1;
    for (int64_t d : f.shape) n *= d;
    f.offset = align_up(size, elem);
    f.bytes = n * elem;
    size = f.offset + f.bytes;
    fields.push_back(std::move(f));
  }
  const Field* find(const std::string& tensor) const {
    for (const Field& f : fields)
      if (f.tensor == tensor) return &f;
    return nullptr;
  }
};

// Where an argument of an entry points.
struct Arg {
  // StepIn, StepOut: the step counter, an f64 in the entry and an i32 in NAME_state.
  // Size: a dynamic dim's size, the wrapper's parameter, as the f32 the
  // entry reads ("@size.D"; offset: the dim's position in ExportAbi::max_dims).
  enum class Src { Inputs, Params, State, Outputs, Grads, Loss, Lr, StepIn, StepOut, Temp, Size } src;
  int64_t offset = 0;  // in the struct, or in the work area (Temp)
};

// A produced value that train_step could not write over its read: computed
// into the work area, then copied to its field.
struct CopyBack {
  int64_t temp = 0;
  Arg::Src to = Arg::Src::Params;
  int64_t offset = 0, bytes = 0;
};

// An input with a dynamic dim, which the entry reads at the capacity:
// copied from its field into the work area, where the rows past the call's
// size along each dynamic axis become copies of the first (as a JIT session
// pads, so that the entry computes the same and nothing it computes from
// them can overflow; the entry masks them out of every result).
struct StagedInput {
  int64_t temp = 0, field = 0, bytes = 0, elem = 4;
  std::vector<int64_t> shape;                 // at the capacities
  std::vector<std::pair<size_t, size_t>> axes;  // (axis, position of its dim in ExportAbi::max_dims)
};

// "@valid.D": 1 for the rows below the call's size of dim D, 0 after, as f32.
struct ValidMask {
  int64_t temp = 0;
  size_t dim = 0;  // position in ExportAbi::max_dims
};

struct EntryPlan {
  EntryKind kind = EntryKind::Forward;
  Program program;
  std::vector<Arg> args;  // sig.reads, then sig.produces
  std::vector<CopyBack> copies;
  std::vector<StagedInput> staged;
  std::vector<ValidMask> masks;
  int64_t temp_bytes = 0;  // multiple of kWorkAlign
  int32_t code_base = 0;   // the entry's check k returns code_base + k
};

// The whole ABI of one export.
struct ExportAbi {
  std::string name, upper;    // the symbols' prefix, and in capitals for macros
  std::string triple, cpu;    // the machine
  bool host = true;           // the JIT's machine: this CPU (bit-identical results)
  std::vector<std::pair<std::string, int64_t>> dims;      // fixed: NAME_DIM_D
  std::vector<std::pair<std::string, int64_t>> max_dims;  // dynamic, up to a capacity (--max): NAME_MAX_D,
                                                          // an int64_t argument of every entry
  int32_t size_code_base = 0;  // the return code of max_dims[d]'s size out of range: size_code_base + d
  std::string optimizer;      // "sgd", "adam", ...
  double lr = 0;              // the model's learning rate
  CStruct inputs{"inputs"}, params{"params"}, state{"state"}, outputs{"outputs"}, grads{"grads"};
  DType loss_dtype = DType::F32;
  std::vector<EntryPlan> entries;
  std::vector<std::string> messages;  // per return code, from 0 ("ok")

  bool wants(EntryKind kind) const {
    for (const EntryPlan& e : entries)
      if (e.kind == kind) return true;
    return false;
  }
};

// True for the words C and C++ reserve ("int", "struct", "bool", ...).
bool c_keyword(const std::string& s);

// The C header that declares the ABI.
std::string export_header(const ExportAbi& abi);

}  // namespace gradc
