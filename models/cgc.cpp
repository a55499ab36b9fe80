#include "models/cgc.h"

#include "models/gated_experts.h"

namespace fulcrum {

ArchitectureInfo cgcArchitecture() {
  ArchitectureInfo row;
  row.name = "cgc";
  row.description = "customized gate control: shared and task-specific experts, a gate per task";
  row.reference = "Tang, Liu, Zhao, Gong, RecSys 2020";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const int64_t shared = model.getInt("shared_experts", 1, 1, 1000);
    const int64_t own = model.getInt("task_experts", 1, 1, 1000);
    return planGatedExperts(model, context, shared, own);
  };
  return row;
}

}  // namespace fulcrum
