// MMoE: Ma, Zhao, Yi, Chen, Hong, Chi, "Modeling Task Relationships in
// Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018.
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// `model.architecture: mmoe`: E experts (each a `model.trunk`), all
/// shared, and one softmax gate per task on the flattened input:
/// \f[ y_t = h_t\Big(\sum_{e=1}^{E} \mathrm{softmax}(W_t \bar x)_e\, f_e(x)\Big) \f]
/// Options: `experts` (E, in [1, 1000], default 3). Features: the E expert
/// outputs. Shared: the experts; task t: its gate and head (as LibMTL).
ArchitectureInfo mmoeArchitecture();

}  // namespace fulcrum
