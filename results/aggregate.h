// The arithmetic of comparing trials: mean ± std over seeds, best-epoch
// selection, the Δm% summary number and ranks. Plain numbers in, plain
// numbers out; nothing here reads a file.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fulcrum::results {

/// Mean and sample standard deviation of some values.
struct MeanStd {
  double mean = 0.0;  ///< NaN when n == 0
  double std = 0.0;   ///< sample (n − 1) standard deviation; 0 when n == 1, NaN when n == 0
  std::size_t n = 0;  ///< number of finite values used
};

/// Mean ± sample std of the finite values in `values` (NaN and ±inf are
/// left out, and n says how many were used).
MeanStd meanStd(const std::vector<double>& values);

/// True for metrics where a larger value is better ("accuracy"); false for
/// losses and errors (loss, mse, mae, ...). A guess from the name, used only
/// for files that do not record their directions (metric_directions).
bool higherIsBetter(const std::string& metric);

/// Index of the best entry of `validation` (largest if `higherIsBetter`,
/// else smallest), NaN entries skipped, ties going to the earliest; -1 when
/// no entry is finite.
std::ptrdiff_t bestIndex(const std::vector<double>& validation, bool higherIsBetter);

/// Δm% of one result against a baseline (REFERENCES.md section 6):
/// \f[ \Delta m = \frac{1}{K} \sum_k (-1)^{s_k} \frac{M_k - M_{b,k}}{M_{b,k}} \times 100 \f]
/// with s_k = 1 where higher is better, so that a negative Δm is an
/// improvement. All three vectors have K entries. NaN if K == 0, the sizes
/// differ, or any value is not finite or a baseline value is 0.
double deltaM(const std::vector<double>& values, const std::vector<double>& baseline,
              const std::vector<bool>& higherIsBetter);

/// Δm% averaged per task first (LibMTL's): the mean over the T tasks of the
/// mean over each task's metrics of (−1)^{s_k} (M_k − M_{b,k}) / M_{b,k},
/// × 100. `tasks` names each entry's task (K entries); NaN as deltaM.
double deltaMByTask(const std::vector<double>& values, const std::vector<double>& baseline,
                    const std::vector<bool>& higherIsBetter, const std::vector<std::string>& tasks);

/// The texts that state deltaM's and deltaMByTask's definitions in every
/// comparison output.
extern const char* const kDeltaMDefinition;
extern const char* const kDeltaMByTaskDefinition;

/// Two-sided p-value of Student's t distribution with `df` degrees of
/// freedom at `t`: I_{df/(df+t²)}(df/2, 1/2), the regularised incomplete
/// beta function. NaN for df <= 0 or a NaN t.
double studentTwoSidedP(double t, double df);

/// The paired t-test of `a` against `b` (entry i of each from the same
/// seed): t = mean(d) / (sd(d)/√n) of d = a − b over the n pairs where both
/// are finite, two-sided p with n − 1 degrees of freedom. NaN ("n/a") for
/// n < 3 or unequal sizes; 1 when every difference is 0, 0 when every one is
/// the same non-zero value.
double pairedTTestP(const std::vector<double>& a, const std::vector<double>& b);

/// Holm's step-down adjustment of the p-values of one family: sorted
/// ascending, p_(i) becomes max_{j <= i} min(1, (m − j + 1) p_(j)), m the
/// number of finite p-values; NaN stays NaN (not a member of the family).
std::vector<double> holmAdjusted(const std::vector<double>& p);

/// The level at which an adjusted p-value is significant in compare.
inline constexpr double kSignificanceLevel = 0.05;

/// Competition ranks ("1224") of `values`, lower value = better = rank 1.
/// Entries that are not finite get rank 0 (unranked).
std::vector<int> ranks(const std::vector<double>& values);

}  // namespace fulcrum::results
