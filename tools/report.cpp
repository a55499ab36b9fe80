// `fulcrum report`: one self-contained HTML page (figures embedded as data
// URIs, no external style or script) that can be mailed or archived with the
// sweep it describes.

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "results/comparison.h"
#include "results/json.h"
#include "results/sweep_folder.h"
#include "results/trial_file.h"
#include "tools/commands.h"
#include "tools/result_commands.h"
#include "tools/sweep.h"

#ifndef FULCRUM_PLOT_SCRIPT
#define FULCRUM_PLOT_SCRIPT "tools/plot"
#endif

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

std::string base64(const std::string& bytes) {
  static const char* const kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t left = bytes.size() - i;
    uint32_t chunk = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left > 1) chunk |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (left > 2) chunk |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += left > 1 ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += left > 2 ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read '{}'", path.string()));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// Runs the plot script with its standard output sent to `log`; returns its
/// exit code (127 if it could not be started).
int runPlots(const ReportCommandOptions& options, const std::string& folder,
             const fs::path& figures, const fs::path& log) {
  std::vector<std::string> args = {
      options.python,
      options.plotScript.empty() ? FULCRUM_PLOT_SCRIPT : options.plotScript,
      folder,
      "--out",
      figures.string(),
      "--fulcrum",
      fulcrumExecutable(),
      "--select",
      options.compare.select,
      "--delta-m",
      options.compare.deltaM,
      "--split",
      options.compare.split,
      "--baseline",
      options.compare.baseline};
  for (const std::string& metric : options.compare.metrics) {
    args.push_back("--metric");
    args.push_back(metric);
  }
  const pid_t child = fork();
  if (child < 0)
    throw std::runtime_error(fmt::format("cannot start the plot script: {}", std::strerror(errno)));
  if (child == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// The PNG files in `figures`: first those plotted-data.json lists, in its
/// order (one figure per concern, as the plot script arranged them), then
/// any others sorted. The file names are all that is read from the JSON.
std::vector<std::string> figureList(const fs::path& figures) {
  std::vector<std::string> listed, others;
  std::error_code code;
  if (fs::is_regular_file(figures / "plotted-data.json", code)) {
    const std::string json = readFile(figures / "plotted-data.json");
    const std::string key = "\"file\": \"";
    for (std::size_t at = json.find(key); at != std::string::npos; at = json.find(key, at + 1)) {
      const std::size_t start = at + key.size(), end = json.find('"', start);
      if (end == std::string::npos) break;
      const std::string name = json.substr(start, end - start);
      if (fs::is_regular_file(figures / name, code)) listed.push_back(name);
    }
  }
  for (fs::directory_iterator it(figures, code), end; !code && it != end; it.increment(code)) {
    const std::string name = it->path().filename().string();
    if (it->path().extension() == ".png" &&
        std::find(listed.begin(), listed.end(), name) == listed.end())
      others.push_back(name);
  }
  std::sort(others.begin(), others.end());
  listed.insert(listed.end(), others.begin(), others.end());
  return listed;
}

std::string section(const std::string& id, const std::string& title, const std::string& body) {
  return fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n", id,
                     results::htmlEscape(title), body);
}

std::string experimentSection(const results::TrialSet& set) {
  if (set.trials.empty()) return "<p>No readable trial.</p>\n";
  std::string body;
  const results::TrialReader first(set.trials.front().path,
                                   results::TrialReader::Contents::kAttributesOnly);
  const std::string file = first.text("experiment_file");
  std::error_code code;
  if (!file.empty() && fs::is_regular_file(file, code)) {
    body += fmt::format(
        "<p>Experiment file <code>{}</code> (as it is now):</p>\n<pre id=\"experiment\">{}</pre>\n",
        results::htmlEscape(file), results::htmlEscape(readFile(file)));
  } else if (!file.empty()) {
    body += fmt::format("<p>Experiment file <code>{}</code> (no longer readable).</p>\n",
                        results::htmlEscape(file));
  }
  body += fmt::format("<p>Swept keys: {}.</p>\n",
                      set.sweptKeys.empty()
                          ? std::string("none")
                          : results::htmlEscape(fmt::format("{}", fmt::join(set.sweptKeys, ", "))));
  std::set<std::string> shown;
  for (const results::TrialEntry& trial : set.trials) {
    const std::string name = trial.label + (trial.context.empty() ? "" : " ") + [&] {
      std::string text;
      for (const auto& [key, value] : trial.context) text += fmt::format("{}={} ", key, value);
      return text;
    }();
    if (!shown.insert(name).second) continue;
    const results::TrialReader reader(trial.path, results::TrialReader::Contents::kAttributesOnly);
    body += fmt::format(
        "<details><summary>Resolved configuration of {} (seed "
        "{})</summary>\n<pre>{}</pre></details>\n",
        results::htmlEscape(name), trial.seed, results::htmlEscape(reader.text("config_yaml")));
  }
  return body;
}

std::string environmentSection(const results::TrialSet& set) {
  std::map<std::string, std::set<std::string>> values;
  const std::vector<std::string> keys = {
      "fulcrum_version", "git_commit", "torch_version", "blas",
      "threads",         "host",       "start_time",    "end_time"};
  for (const results::TrialEntry& trial : set.trials) {
    try {
      const results::TrialReader reader(trial.path,
                                        results::TrialReader::Contents::kAttributesOnly);
      for (const std::string& key : keys) {
        const auto& integers = reader.attributes().integers;
        if (integers.count(key) != 0) {
          values[key].insert(std::to_string(integers.at(key)));
        } else if (!reader.text(key).empty()) {
          values[key].insert(reader.text(key));
        }
      }
    } catch (const results::FileError&) {
      // Listed among the trials not included.
    }
  }
  std::string body =
      "<p>As recorded in the trial files (all distinct values):</p>\n<table id=\"environment\">\n";
  for (const std::string& key : keys) {
    if (values.count(key) == 0) continue;
    std::string text;
    if (key == "start_time" || key == "end_time") {
      text = *values[key].begin() + (values[key].size() > 1 ? " … " + *values[key].rbegin() : "");
    } else {
      for (const std::string& value : values[key]) text += (text.empty() ? "" : "; ") + value;
    }
    body += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", results::htmlEscape(key),
                        results::htmlEscape(text));
  }
  body += "</table>\n";
  body += fmt::format("<p>This report was written by:</p>\n<pre>{}</pre>\n",
                      results::htmlEscape(versionText()));
  return body;
}

std::string excludedSection(const results::Comparison& comparison) {
  if (comparison.excluded.empty())
    return "<p id=\"excluded\">None: every trial file was included.</p>\n";
  std::string body =
      "<table id=\"excluded\">\n<thead><tr><th>file</th><th>reason</th></tr></thead>\n<tbody>\n";
  for (const results::ExcludedTrial& trial : comparison.excluded)
    body += fmt::format("<tr><td><code>{}</code></td><td>{}</td></tr>\n",
                        results::htmlEscape(trial.path), results::htmlEscape(trial.reason));
  return body + "</tbody>\n</table>\n";
}

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

const char* const kStyle = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.4em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline { background: #f3f3f3; }
ul.definitions { font-size: 0.9em; color: #444; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
div.scroll { overflow-x: auto; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
)";

std::string renderPage(const std::string& folder, const results::TrialSet& set,
                       const results::Comparison& comparison, const std::string& figureBody) {
  std::string page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += fmt::format("<title>fulcrum report: {}</title>\n<style>{}</style>\n</head>\n<body>\n",
                      results::htmlEscape(folder), kStyle);
  page += fmt::format("<h1>fulcrum report: {}</h1>\n<p>Written {}.</p>\n",
                      results::htmlEscape(folder), utcNow());
  page += section("comparison-section", "Comparison",
                  "<div class=\"scroll\">\n" +
                      results::renderComparison(comparison, results::ComparisonFormat::kHtml) +
                      "</div>\n");
  page += section("figures", "Figures", figureBody);
  page += section("experiment", "Experiment", experimentSection(set));
  page += section("environment", "Environment", environmentSection(set));
  page += section("not-included", "Trials not included", excludedSection(comparison));
  page += "</body>\n</html>\n";
  return page;
}

}  // namespace

int reportCommand(const ReportCommandOptions& options, std::ostream& out, std::ostream& err) {
  if (options.compare.targets.size() != 1) {
    err << "fulcrum: report: give one folder of trial files\n";
    return 2;
  }
  const std::string folder = options.compare.targets.front();
  std::error_code code;
  if (!fs::is_directory(folder, code)) {
    err << "fulcrum: report: " << folder << ": not a folder\n";
    return 2;
  }
  results::TrialSet set;
  results::Comparison comparison;
  try {
    comparison = buildComparison(options.compare, set);
  } catch (const std::exception& e) {
    err << "fulcrum: report: " << e.what() << "\n";
    return 2;
  }
  const fs::path html =
      options.out.empty() ? fs::path(folder) / "report.html" : fs::path(options.out);
  const fs::path figures =
      (html.parent_path().empty() ? fs::path(".") : html.parent_path()) / "figures";
  const std::string refused = refusedOutput(html.string(), set);
  if (!refused.empty()) {
    err << "fulcrum: report: " << refused << "\n";
    return 2;
  }

  std::string figureBody;
  bool plotsFailed = false;
  if (options.noPlots) {
    figureBody = "<p>Figures left out (--no-plots).</p>\n";
  } else {
    fs::create_directories(figures, code);
    const fs::path log = figures / "plot.log";
    const int status = runPlots(options, folder, figures, log);
    if (status != 0 && status != 1) {
      plotsFailed = true;
      err << fmt::format("fulcrum: report: the plot script exited with {}; its output is in {}\n",
                         status, log.string());
      figureBody = fmt::format("<p>The plot script failed (exit {}); see <code>{}</code>.</p>\n",
                               status, results::htmlEscape(log.string()));
    }
    for (const std::string& name : figureList(figures)) {
      figureBody += fmt::format(
          "<figure><img src=\"data:image/png;base64,{}\" "
          "alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
          base64(readFile(figures / name)), results::htmlEscape(fs::path(name).stem().string()),
          results::htmlEscape(name));
    }
  }

  std::string page;
  try {
    page = renderPage(folder, set, comparison, figureBody);
  } catch (const std::exception& e) {
    err << "fulcrum: report: " << e.what() << "\n";
    return 2;
  }

  std::ofstream file(html, std::ios::binary | std::ios::trunc);
  if (!(file << page) || !file.flush()) {
    err << "fulcrum: report: cannot write " << html.string() << "\n";
    return 2;
  }
  out << html.string() << "\n";
  for (const results::ExcludedTrial& trial : comparison.excluded)
    err << "fulcrum: report: not included: " << trial.path << ": " << trial.reason << "\n";
  for (const results::DuplicateTrial& duplicate : comparison.duplicates)
    err << "fulcrum: report: counted once: " << duplicate.kept << " kept, " << duplicate.path
        << " left out (same configuration and seed)\n";
  return plotsFailed ? 2 : (comparison.excluded.empty() ? 0 : 1);
}

}  // namespace fulcrum
