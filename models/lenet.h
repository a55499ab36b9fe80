// The `lenet` trunk of the MultiMNIST papers (Sener & Koltun 2018).
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// The row of `model.trunk.kind: lenet`: conv(1,10,k9) ReLU pool2,
/// conv(10,20,k5) ReLU pool2, fc(500→50) ReLU, on 1×36×36 inputs; the fc is
/// the last shared layer. No options.
TrunkInfo lenetTrunk();

}  // namespace fulcrum
