// The `segnet` trunk: the encoder-decoder of the MTAN / Nash-MTL / FAMO
// NYUv2 and Cityscapes experiments (Badrinarayanan et al., TPAMI 2017, as
// configured in Liu, Johns, Davison, CVPR 2019: SegNet-Split without attention).
#pragma once

#include "models/registry.h"

namespace fulcrum {

/// The row of `model.trunk.kind: segnet`, on C × H × W images, yielding
/// filters[0] × H × W feature maps (a spatial trunk: dense heads only).
/// Stage i has conv3×3 + BatchNorm + ReLU layers (two in stages 0 and 1,
/// three from stage 2, the published 2-2-3-3-3) then a 2×2 max-pool whose
/// indices the mirrored decoder stage unpools with. Convolutions are
/// Xavier-normal with zero bias, as the reference code. Option: `filters`
/// (one width per stage; default 64, 128, 256, 512, 512 — the papers'; H and
/// W must be at least 2^stages). Its last shared layer is the decoder's last
/// convolution (weight, bias; the BatchNorm after it aside).
TrunkInfo segnetTrunk();

}  // namespace fulcrum
