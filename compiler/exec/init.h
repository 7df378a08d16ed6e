// Parameter initialization (SPEC 2.2): seeded and deterministic.
//
// Each param draws from its own stream, keyed by the seed and the param's
// name, so the values of one param do not change when another is added, and
// are identical for the same seed, dims and model on every run.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "compiler/ir/graph.h"
#include "gradc/tensor.h"

namespace gradc {

Tensor init_param(const ParamDecl& p, const Node& node, uint64_t seed);
// Throws DataError, before allocating, when the params exceed kMaxParamBytes.
NamedTensors init_params(const ModelIR& m, uint64_t seed);
// Buffers are initialized like params, each from the stream of its own name.
NamedTensors init_buffers(const ModelIR& m, uint64_t seed);
// `decls` (m.params or m.buffers, named `what` in errors) from their initializers.
NamedTensors init_decls(const ModelIR& m, const std::vector<ParamDecl>& decls, std::string_view what, uint64_t seed);
inline constexpr double kMaxParamBytes = 16.0 * (1 << 30);

}  // namespace gradc
