// Precompiled header for every target that uses LibTorch.
#pragma once
#include <torch/torch.h>
