#include "models/mmoe.h"

#include "models/gated_experts.h"

namespace fulcrum {

ArchitectureInfo mmoeArchitecture() {
  ArchitectureInfo row;
  row.name = "mmoe";
  row.description = "multi-gate mixture of experts: shared experts, one softmax gate per task";
  row.reference = "Ma, Zhao, Yi, Chen, Hong, Chi, KDD 2018";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const int64_t experts = model.getInt("experts", 3, 1, 1000);
    ModelPlan plan = planGatedExperts(model, context, experts, 0);
    return plan;
  };
  return row;
}

}  // namespace fulcrum
