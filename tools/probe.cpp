#include "tools/probe.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "framework/config_node.h"
#include "framework/gradients.h"
#include "framework/regular_file.h"
#include "framework/update.h"
#include "strategies/registry.h"

namespace fulcrum {
namespace {

/// Bad probe input: the message names the file and where in it.
struct ProbeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A CSV row with the line it came from.
struct Row {
  int line = 0;
  std::vector<double> values;
};

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

/// `text` fit for a one-line message: control and non-ASCII bytes as \xNN,
/// at most 40 characters.
std::string printable(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 40)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte >= 0x20 && byte < 0x7f ? std::string(1, c) : fmt::format("\\x{:02x}", byte);
  }
  return text.size() > 40 ? out + "..." : out;
}

/// The blocks of non-blank rows of `path`, separated by blank lines.
std::vector<std::vector<Row>> readBlocks(const std::string& path) {
  // Before the open, which would wait forever on a FIFO or a device.
  if (const std::string kind = nonRegularKind(path); !kind.empty())
    throw ProbeError(fmt::format("{}: is {}, not a regular file", path, kind));
  std::ifstream in(path);
  if (!in) throw ProbeError(fmt::format("{}: cannot open file", path));
  std::vector<std::vector<Row>> blocks;
  bool inBlock = false;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (trim(text).empty()) {
      inBlock = false;
      continue;
    }
    if (!inBlock) blocks.emplace_back();
    inBlock = true;
    Row row;
    row.line = line;
    std::stringstream cells(text);
    std::string cell;
    int column = 1;
    for (; std::getline(cells, cell, ','); ++column) {
      const std::string value = trim(cell);
      char* end = nullptr;
      errno = 0;
      const double number = std::strtod(value.c_str(), &end);
      // The whole cell must be the number: a NUL byte inside it would stop
      // strtod early and read "0\0junk" as 0.
      if (value.empty() || end != value.c_str() + value.size()) {
        throw ProbeError(fmt::format("{}:{}: row {}, column {}: '{}' is not a number", path, line,
                                     blocks.back().size() + 1, column, printable(value)));
      }
      if (!std::isfinite(number)) {
        throw ProbeError(fmt::format("{}:{}: row {}, column {}: {} is not finite", path, line,
                                     blocks.back().size() + 1, column, value));
      }
      row.values.push_back(number);
    }
    if (!text.empty() && text.back() == ',') {
      throw ProbeError(fmt::format("{}:{}: row {}, column {}: empty cell", path, line,
                                   blocks.back().size() + 1, column));
    }
    blocks.back().push_back(std::move(row));
  }
  return blocks;
}

/// The K gradient matrices (T × P each) of --grads.
std::vector<torch::Tensor> readGradients(const std::string& path, int64_t steps) {
  const auto blocks = readBlocks(path);
  if (static_cast<int64_t>(blocks.size()) != steps) {
    throw ProbeError(
        fmt::format("{}: expected {} matri{} (--steps {}) separated by blank lines, found {}", path,
                    steps, steps == 1 ? "x" : "ces", steps, blocks.size()));
  }
  const std::size_t tasks = blocks[0].size();
  const std::size_t width = blocks[0][0].values.size();
  std::vector<torch::Tensor> out;
  for (std::size_t k = 0; k < blocks.size(); ++k) {
    if (blocks[k].size() != tasks) {
      throw ProbeError(fmt::format("{}:{}: matrix {} has {} rows (tasks), the first has {}", path,
                                   blocks[k][0].line, k + 1, blocks[k].size(), tasks));
    }
    torch::Tensor matrix =
        torch::empty({static_cast<int64_t>(tasks), static_cast<int64_t>(width)}, torch::kFloat64);
    auto a = matrix.accessor<double, 2>();
    for (std::size_t i = 0; i < tasks; ++i) {
      const Row& row = blocks[k][i];
      if (row.values.size() != width) {
        throw ProbeError(fmt::format("{}:{}: row {} has {} values, expected {} (ragged rows)", path,
                                     row.line, i + 1, row.values.size(), width));
      }
      for (std::size_t p = 0; p < width; ++p) {
        a[static_cast<int64_t>(i)][static_cast<int64_t>(p)] = row.values[p];
      }
    }
    out.push_back(matrix);
  }
  return out;
}

/// The K loss vectors of --losses (ones without it).
std::vector<std::vector<double>> readLosses(const std::string& path, int64_t steps,
                                            std::size_t tasks) {
  if (path.empty())
    return std::vector<std::vector<double>>(static_cast<std::size_t>(steps),
                                            std::vector<double>(tasks, 1.0));
  std::vector<Row> rows;
  for (auto& block : readBlocks(path)) {
    for (auto& row : block) rows.push_back(std::move(row));
  }
  if (static_cast<int64_t>(rows.size()) != steps) {
    throw ProbeError(fmt::format("{}: expected {} line{} of losses (one per step), found {}", path,
                                 steps, steps == 1 ? "" : "s", rows.size()));
  }
  std::vector<std::vector<double>> out;
  for (const Row& row : rows) {
    if (row.values.size() != tasks) {
      throw ProbeError(
          fmt::format("{}:{}: {} losses, expected {} (one per task, as rows in --grads)", path,
                      row.line, row.values.size(), tasks));
    }
    out.push_back(row.values);
  }
  return out;
}

std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

std::string jsonArray(const torch::Tensor& t) {
  const torch::Tensor cpu = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  std::string out = "[";
  for (int64_t i = 0; i < cpu.numel(); ++i) {
    out += (i ? "," : "") + number(cpu.data_ptr<double>()[i]);
  }
  return out + "]";
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

const char* kindName(StepOutput::Kind kind) {
  switch (kind) {
    case StepOutput::Kind::kObjective:
      return "objective";
    case StepOutput::Kind::kSharedGradient:
      return "shared_gradient";
    case StepOutput::Kind::kRepresentationGradient:
      return "representation_gradient";
  }
  return "?";
}

/// The strategy's YAML mapping from its name and the --set options.
YAML::Node strategyNode(const ProbeOptions& options) {
  YAML::Node node(YAML::NodeType::Map);
  node["name"] = options.strategy;
  for (const auto& set : options.sets) {
    const auto eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ProbeError(fmt::format("--set {}: expected option=value", set));
    }
    const std::string key = trim(set.substr(0, eq));
    try {
      node[key] = YAML::Load(set.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ProbeError(fmt::format("--set {}: the value is not valid YAML: {}", set, e.msg));
    }
  }
  return node;
}

void runProbe(const ProbeOptions& options, std::ostream& out) {
  if (options.steps < 1)
    throw ProbeError(fmt::format("--steps {}: must be at least 1", options.steps));
  const std::vector<torch::Tensor> gradients = readGradients(options.grads, options.steps);
  const int64_t taskCount = gradients[0].size(0);
  const auto lossRows =
      readLosses(options.losses, options.steps, static_cast<std::size_t>(taskCount));

  std::vector<TaskSpec> tasks;
  for (int64_t i = 0; i < taskCount; ++i)
    tasks.push_back(TaskSpec{fmt::format("task{}", i), TaskKind::kRegression, 1});
  auto strategy = makeStrategy(ConfigNode(strategyNode(options), "--set", "strategy"), tasks);
  StrategyContext context;
  context.tasks = tasks;
  context.dtype = torch::kFloat64;
  context.sharedParameterCount = gradients[0].size(1);
  context.lastSharedLayerParameterCount = gradients[0].size(1);
  context.stepsPerEpoch = 1;
  context.seed = options.seed;
  strategy->attach(context);
  const std::vector<std::string> names = strategy->diagnosticNames();

  for (int64_t k = 0; k < options.steps; ++k) {
    const torch::Tensor& g = gradients[static_cast<std::size_t>(k)];
    // The shared parameters θ (at 0) with losses L_i = l_i + g_iᵀθ: their
    // gradients are the given rows, and the update lands on θ exactly as the
    // trainer applies it (for an objective, Σ_i (∂objective/∂L_i) g_i).
    const torch::Tensor theta = torch::zeros({g.size(1)}, torch::kFloat64).requires_grad_(true);
    std::vector<torch::Tensor> losses;
    const std::vector<double>& row = lossRows[static_cast<std::size_t>(k)];
    for (int64_t i = 0; i < taskCount; ++i) {
      losses.push_back(row[static_cast<std::size_t>(i)] + torch::dot(g[i], theta));
    }
    FixedGradientSource source(g);
    const StepOutput update = strategy->step(StepInput{losses, source, k, k});
    applyUpdate(update, UpdateTargets{{theta}, {}, losses, {theta}});
    const torch::Tensor direction =
        theta.grad().defined() ? theta.grad().detach() : torch::zeros({g.size(1)}, torch::kFloat64);
    std::string diagnostics = "{";
    for (std::size_t d = 0; d < update.diagnostics.size() && d < names.size(); ++d) {
      diagnostics += (d ? "," : "") + jsonString(names[d]) + ":" + number(update.diagnostics[d]);
    }
    diagnostics += "}";
    out << fmt::format(
        "{{\"step\":{},\"kind\":\"{}\",\"direction\":{},\"weights\":{},\"diagnostics\":{}}}\n", k,
        kindName(update.kind), jsonArray(direction),
        update.weights.defined() ? jsonArray(update.weights) : "[]", diagnostics);
    // As the trainer does: a strategy that measures the losses after its step
    // gets them before its next step(); here they are the next row of --losses
    // (each matrix is a step of its own, as is each epoch).
    if (strategy->wantsLossesAfterStep() && k + 1 < options.steps) {
      strategy->afterStep(lossRows[static_cast<std::size_t>(k + 1)]);
    }
    strategy->onEpochEnd(EpochStats{k, lossRows[static_cast<std::size_t>(k)]});
  }
}

}  // namespace

int probeCommand(const ProbeOptions& options, std::ostream& out, std::ostream& err) {
  try {
    runProbe(options, out);
    return 0;
  } catch (const ProbeError& e) {
    err << "fulcrum probe: " << e.what() << "\n";
  } catch (const ConfigError& e) {
    err << "fulcrum probe: " << e.what() << "\n";
  } catch (const std::invalid_argument& e) {
    err << "fulcrum probe: " << e.what() << "\n";
  }
  return 2;
}

}  // namespace fulcrum
