// DCE + CSE: a plain rebuild (see rebuild.h).
#include "compiler/passes/cleanup.h"

#include "compiler/passes/rebuild.h"

namespace gradc {

ModelIR eliminate_dead_and_common(const ModelIR& m, size_t* rewrites) { return rebuild(m, nullptr, rewrites); }

}  // namespace gradc
