// The `lenet` trunk of the MultiMNIST papers (Sener & Koltun 2018).
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// The row of `model.trunk.kind: lenet`: conv(C,10,k9) ReLU pool2,
/// conv(10,20,k5) ReLU pool2, fc(20·h·w → 50) ReLU, on C × H × W images (H,
/// W ≥ 20; on Multi-Fashion's 1×36×36 the papers' fc 500 → 50); the fc is
/// the last shared layer. No options.
TrunkInfo lenetTrunk();

}  // namespace fulcrum
