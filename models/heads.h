// The built-in heads: `linear`, `mlp` and the spatial `conv`.
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// `model.head.kind: linear`: Linear(width, outputs). No options.
HeadInfo linearHead();
/// `model.head.kind: mlp`: Linear + ReLU per width of `hidden` (each in
/// [1, 10⁶]; default 50), then Linear(·, outputs).
HeadInfo mlpHead();
/// `model.head.kind: conv`, a spatial head: conv3×3(width, width) then
/// conv1×1(width, outputs), MTAN's task-specific prediction layer (no
/// activation between, as the reference code). No options.
HeadInfo convHead();

}  // namespace fulcrum
