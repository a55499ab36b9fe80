// CGC: the single-level Customized Gate Control of Tang, Liu, Zhao, Gong,
// "Progressive Layered Extraction (PLE)", RecSys 2020.
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// `model.architecture: cgc`: S shared experts and E_t experts of each
/// task's own (each a `model.trunk`); task t's softmax gate on the flattened
/// input mixes [shared ; task t's]:
/// \f[ y_t = h_t\Big(\sum_{e} g_{t,e}(x)\, f_e(x)\Big), \quad
///     e \in \text{shared} \cup \text{own}_t \f]
/// Options: `shared_experts` (S, in [1, 1000], default 1), `task_experts`
/// (E_t, in [1, 1000], default 1). Features: the shared experts' outputs.
/// Shared: the shared experts; task t: its experts, gate and head.
ArchitectureInfo cgcArchitecture();

}  // namespace fulcrum
