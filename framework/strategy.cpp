#include "framework/strategy.h"

namespace fulcrum {

std::string toString(GradientNeed need) {
  switch (need) {
    case GradientNeed::kLosses: return "losses";
    case GradientNeed::kRepresentation: return "representation";
    case GradientNeed::kLastSharedLayer: return "last_shared_layer";
    case GradientNeed::kSharedParameters: return "shared_parameters";
  }
  return "unknown";
}

}  // namespace fulcrum
