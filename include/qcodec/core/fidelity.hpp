#pragma once
/// Fidelity of a reconstruction Ŵ of W, and bounds a caller can demand of it.

#include <cmath>
#include <limits>
#include <optional>
#include <ostream>
#include <string_view>

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"

namespace qcodec::inline QCODEC_ABI {

/// How far a reconstruction Ŵ is from W.
struct fidelity_report {
  double rel_err = 0;          ///< ||W - Ŵ||_F / ||W||_F (0 when both are zero)
  double snr_db = 0;           ///< -20 log10(rel_err); +inf for an exact reconstruction
  double max_abs_err = 0;      ///< max |W - Ŵ|
  index_t worst_row = 0;         ///< row with the largest relative error
  double worst_row_rel_err = 0;
  index_t sign_flips = 0;        ///< count of sign(Ŵ) != sign(W) where Ŵ != 0
};

namespace detail {

/// ||e|| / ||w||, with 0/0 = 0, x/0 = inf and NaN kept.
inline double relative(double err_norm, double ref_norm) { return err_norm == 0 ? 0.0 : err_norm / ref_norm; }

/// a is worse than b: larger, or NaN where b is not (a NaN error is never hidden).
inline bool worse(double a, double b) { return std::isnan(a) ? !std::isnan(b) : a > b; }

}  // namespace detail

/// Measures Ŵ against W (same shape, else qcodec::error); sums are accumulated in FP64. A NaN
/// in Ŵ makes rel_err, snr_db and max_abs_err NaN and its row the worst; an Inf makes them Inf
/// (snr_db -Inf).
inline fidelity_report measure_fidelity(matrix_view w, matrix_view w_hat) {
  if (w.rows() != w_hat.rows() || w.cols() != w_hat.cols())
    detail::fail("measure_fidelity: shapes differ (", w.rows(), " x ", w.cols(), " vs ",
                 w_hat.rows(), " x ", w_hat.cols(), ")");
  fidelity_report report;
  double err_sq = 0, ref_sq = 0;
  for (index_t r = 0; r < w.rows(); ++r) {
    double row_err_sq = 0, row_ref_sq = 0;
    for (index_t c = 0; c < w.cols(); ++c) {
      const double x = w(r, c), y = w_hat(r, c), e = x - y;
      row_err_sq += e * e;
      row_ref_sq += x * x;
      if (detail::worse(std::abs(e), report.max_abs_err)) report.max_abs_err = std::abs(e);
      if (y != 0 && (x == 0 || std::signbit(x) != std::signbit(y))) ++report.sign_flips;
    }
    const double row_rel = detail::relative(std::sqrt(row_err_sq), std::sqrt(row_ref_sq));
    if (r == 0 || detail::worse(row_rel, report.worst_row_rel_err)) {
      report.worst_row = r;
      report.worst_row_rel_err = row_rel;
    }
    err_sq += row_err_sq;
    ref_sq += row_ref_sq;
  }
  report.rel_err = detail::relative(std::sqrt(err_sq), std::sqrt(ref_sq));
  report.snr_db = report.rel_err == 0 ? std::numeric_limits<double>::infinity()
                                      : -20.0 * std::log10(report.rel_err);
  return report;
}

/// Bounds an encode must meet; unset members are not checked.
struct fidelity_bound {
  std::optional<double> max_rel_err{};      ///< upper bound on rel_err
  std::optional<double> max_abs_err{};      ///< upper bound on max_abs_err
  std::optional<index_t> max_sign_flips{};    ///< upper bound on sign_flips
};

/// Throws qcodec::error naming the tensor when `report` misses `bound`; a reconstruction
/// holding NaN misses every bound, set or not.
inline void require(const fidelity_report& report, const fidelity_bound& bound,
                    std::string_view name) {
  if (std::isnan(report.rel_err) || std::isnan(report.max_abs_err))
    detail::fail("tensor '", name, "': the reconstruction holds NaN (row ", report.worst_row, ")");
  if (bound.max_rel_err && !(report.rel_err <= *bound.max_rel_err))
    detail::fail("tensor '", name, "': rel_err ", report.rel_err, " exceeds the bound ",
                 *bound.max_rel_err, " (worst row ", report.worst_row, ", rel_err ",
                 report.worst_row_rel_err, ")");
  if (bound.max_abs_err && !(report.max_abs_err <= *bound.max_abs_err))
    detail::fail("tensor '", name, "': max_abs_err ", report.max_abs_err, " exceeds the bound ",
                 *bound.max_abs_err);
  if (bound.max_sign_flips && report.sign_flips > *bound.max_sign_flips)
    detail::fail("tensor '", name, "': ", report.sign_flips, " sign flips exceed the bound ",
                 *bound.max_sign_flips);
}

inline std::ostream& operator<<(std::ostream& out, const fidelity_report& r) {
  return out << "rel_err=" << r.rel_err << " snr_db=" << r.snr_db
             << " max_abs_err=" << r.max_abs_err << " worst_row=" << r.worst_row
             << " sign_flips=" << r.sign_flips;
}

}  // namespace qcodec::inline QCODEC_ABI
