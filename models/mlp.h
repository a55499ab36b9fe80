// The `mlp` trunk: Linear + ReLU per width of `hidden`.
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// The row of `model.trunk.kind: mlp`. Options: `hidden` (widths, each in
/// [1, 10⁶], at least one; default 100, 100, 100, 100). Inputs of any shape
/// are flattened; the output is after the last ReLU, whose Linear is the
/// last shared layer. Each Linear + ReLU is a stage.
TrunkInfo mlpTrunk();

}  // namespace fulcrum
