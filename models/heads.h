// The built-in heads: `linear` and `mlp`.
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// `model.head.kind: linear`: Linear(width, outputs). No options.
HeadInfo linearHead();
/// `model.head.kind: mlp`: Linear + ReLU per width of `hidden` (each in
/// [1, 10⁶]; default 50), then Linear(·, outputs).
HeadInfo mlpHead();

}  // namespace fulcrum
