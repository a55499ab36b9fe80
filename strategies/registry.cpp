#include "strategies/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "strategies/absent_tasks.h"
#include "strategies/aligned_mtl.h"
#include "strategies/cagrad.h"
#include "strategies/db_mtl.h"
#include "strategies/dwa.h"
#include "strategies/fairgrad.h"
#include "strategies/famo.h"
#include "strategies/fixed.h"
#include "strategies/gls.h"
#include "strategies/graddrop.h"
#include "strategies/gradnorm.h"
#include "strategies/gradvac.h"
#include "strategies/imtl.h"
#include "strategies/imtl_l.h"
#include "strategies/mgda.h"
#include "strategies/nash_mtl.h"
#include "strategies/pcgrad.h"
#include "strategies/rlw.h"
#include "strategies/stch.h"
#include "strategies/stl.h"
#include "strategies/uncertainty.h"
#include "strategies/upgrad.h"

namespace fulcrum {

namespace {

std::vector<StrategyInfo> builtInStrategies() {
  return {
      {"fixed", "fixed weights: sum_i a_i L_i (equal weighting by default)", "baseline (no paper)",
       GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<FixedWeights>(readFixedOptions(options, tasks), tasks);
       }},
      {"uncertainty",
       "learned homoscedastic uncertainty: exp(-s_i) L_i + s_i/2, s_i = log sigma_i^2",
       "Kendall, Gal, Cipolla, CVPR 2018", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<UncertaintyWeighting>(readUncertaintyOptions(options, tasks),
                                                       tasks);
       }},
      {"gradnorm", "weights that pull weighted gradient norms towards relative training rates",
       "Chen, Badrinarayanan, Lee, Rabinovich, ICML 2018", GradientNeed::kLastSharedLayer,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<GradNorm>(readGradNormOptions(options, tasks), tasks);
       }},
      {"dwa", "dynamic weight average: softmax of each task's loss ratio over the last two epochs",
       "Liu, Johns, Davison, CVPR 2019", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<DynamicWeightAverage>(readDwaOptions(options, tasks), tasks);
       }},
      {"rlw", "random loss weighting: softmax of N(0,1) logits drawn every step",
       "Lin, Ye, Xu, Shi, Zhang, TMLR 2022", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<RandomLossWeighting>(readRlwOptions(options, tasks), tasks);
       }},
      {"gls", "geometric loss strategy: the geometric mean of the task losses",
       "Chennupati, Sistu, Yogamani, Rawashdeh, CVPR Workshops 2019", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         readGlsOptions(options, tasks);
         return std::make_unique<GeometricLossStrategy>(tasks);
       }},
      {"imtl_l", "learned loss scales balancing e^{s_i} L_i towards 1: sum_i e^{s_i} L_i - s_i",
       "Liu et al., ICLR 2021 (IMTL, loss part)", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<ImtlL>(readImtlLOptions(options, tasks), tasks);
       }},
      {"stch",
       "smooth Tchebycheff: mu logsumexp_i(log(L_i/nadir_i)/mu), nadir from a warm-up epoch of "
       "sum_i log L_i",
       "Lin, Zhang, Yang, Liu, Wang, Zhang, ICML 2024", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<SmoothTchebycheff>(readStchOptions(options, tasks), tasks);
       }},
      {"famo",
       "fast adaptive multitask optimisation: softmax(xi)-weighted log-losses, xi by Adam from "
       "each step's log-loss decrease",
       "Liu, Feng, Stone, Liu, NeurIPS 2023", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<Famo>(readFamoOptions(options, tasks), tasks);
       }},
      {"mgda",
       "min-norm point of the convex hull of the task gradients (Frank-Wolfe; MGDA-UB with "
       "gradients: representation)",
       "Sener, Koltun, NeurIPS 2018", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<Mgda>(readMgdaOptions(options, tasks), tasks);
       }},
      {"pcgrad",
       "gradient surgery: project conflicting task gradients onto each other's normal planes, sum",
       "Yu, Kumar, Gupta, Levine, Hausman, Finn, NeurIPS 2020", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<PcGrad>(readPcGradOptions(options, tasks), tasks);
       }},
      {"cagrad",
       "conflict-averse: best worst-task improvement in a ball of radius c|g0| around the mean "
       "gradient",
       "Liu, Liu, Jin, Stone, Liu, NeurIPS 2021", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<CaGrad>(readCaGradOptions(options, tasks), tasks);
       }},
      {"imtl",
       "impartial MTL: equal projections on all unit task gradients (IMTL-G), with IMTL-L scales "
       "(hybrid)",
       "Liu et al., ICLR 2021 (IMTL)", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<Imtl>(readImtlOptions(options, tasks), tasks);
       }},
      {"nash_mtl",
       "Nash bargaining: d = sum_i a_i g_i with G G^T a = 1/a (concave-convex procedure), clipped "
       "to max_norm",
       "Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya, ICML 2022",
       GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<NashMtl>(readNashMtlOptions(options, tasks), tasks);
       }},
      {"fairgrad",
       "alpha-fair allocation: d = sum_i w_i g_i with G G^T w = w^(-1/alpha), clipped to max_norm",
       "Ban, Ji, ICML 2024", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<FairGrad>(readFairGradOptions(options, tasks), tasks);
       }},
      {"aligned_mtl",
       "aligned gradients: condition G through the eigendecomposition of G G^T to orthogonal rows "
       "of equal norm sigma_min, sum (Aligned-MTL-UB with gradients: representation)",
       "Senushkin, Patakin, Kuznetsov, Konushin, CVPR 2023", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<AlignedMtl>(readAlignedMtlOptions(options, tasks), tasks);
       }},
      {"upgrad",
       "unconflicting projection: project each task gradient onto the dual cone of all of them, "
       "average",
       "Quinton, Rey, arXiv 2024 (Jacobian descent)", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<UpGrad>(readUpGradOptions(options, tasks), tasks);
       }},
      {"db_mtl",
       "dual balancing: EMA of log-loss gradients, each scaled to the largest norm, summed",
       "Lin, Jiang, Ye, Zhang, Chen, Chen, Liu, Kwok, arXiv 2023", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<DbMtl>(readDbMtlOptions(options, tasks), tasks);
       }},
      {"gradvac",
       "gradient vaccine: raise each pair's cosine to an EMA target of its past cosines, sum",
       "Wang, Tsvetkov, Firat, Cao, ICLR 2021", GradientNeed::kSharedParameters,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<GradVac>(readGradVacOptions(options, tasks), tasks);
       }},
      {"graddrop",
       "gradient sign dropout: per representation element keep one sign, positive with probability "
       "P",
       "Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov, NeurIPS 2020",
       GradientNeed::kRepresentation,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<GradDrop>(readGradDropOptions(options, tasks), tasks);
       }},
      {"stl",
       "single-task learning: L_k of `task` alone (default the first task), the others "
       "weighted 0; the baseline of `compare --baseline stl`",
       "baseline (no paper)", GradientNeed::kLosses,
       [](const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
         return std::make_unique<SingleTask>(readStlTask(options, tasks), tasks);
       }},
  };
}

std::vector<StrategyInfo>& mutableTable() {
  static std::vector<StrategyInfo> table = builtInStrategies();
  return table;
}

}  // namespace

const std::vector<StrategyInfo>& strategyTable() { return mutableTable(); }

void registerStrategy(StrategyInfo info) {
  const bool plain =
      !info.name.empty() && std::all_of(info.name.begin(), info.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!plain)
    throw std::invalid_argument(
        fmt::format("registerStrategy: '{}' is not a plain name", info.name));
  if (!info.make)
    throw std::invalid_argument(fmt::format("registerStrategy: '{}' has no factory", info.name));
  for (const auto& row : mutableTable()) {
    if (row.name == info.name) {
      throw std::invalid_argument(
          fmt::format("registerStrategy: a strategy named '{}' exists", info.name));
    }
  }
  mutableTable().push_back(std::move(info));
}

Strategy& unwrapStrategy(Strategy& strategy) {
  if (auto* adapter = dynamic_cast<AbsentTaskAdapter*>(&strategy)) return adapter->inner();
  return strategy;
}

std::unique_ptr<Strategy> makeStrategy(const ConfigNode& node, const std::vector<TaskSpec>& tasks) {
  std::vector<std::string> names;
  for (const auto& row : strategyTable()) names.push_back(row.name);
  const std::string name = node.requireString("name");
  for (const auto& row : strategyTable()) {
    if (row.name == name) {
      std::unique_ptr<Strategy> strategy = row.make(node, tasks);
      node.finish({"name"});
      if (strategy->handlesAbsentTasks()) return strategy;
      return std::make_unique<AbsentTaskAdapter>(std::move(strategy), row.make, node, tasks);
    }
  }
  const std::string suggestion = closestMatch(name, names);
  node.fail("name",
            fmt::format("unknown strategy '{}'{}; known: {}", name,
                        suggestion.empty() ? "" : fmt::format(" (did you mean '{}'?)", suggestion),
                        fmt::format("{}", fmt::join(names, ", "))));
}

}  // namespace fulcrum
