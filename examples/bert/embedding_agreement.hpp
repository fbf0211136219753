#pragma once
/// How closely a model's sentence embeddings follow a reference model's: the cosine of each
/// embedding to its reference, and the Spearman rank correlation of the pairwise cosine
/// similarities (upper triangle) against the reference's.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <qcodec/core/matrix.hpp>

namespace qcodec::examples::bert {

struct embedding_agreement {
  double cosine_mean = 0, cosine_min = 0, spearman = 0;
};

/// Ranks 1..n, ties given their average rank.
inline std::vector<double> ranks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> out(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + j) + 1.0;
    for (std::size_t k = i; k <= j; ++k) out[order[k]] = rank;
    i = j + 1;
  }
  return out;
}

/// Spearman's rho: Pearson's correlation of the ranks.
inline double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(ra.size());
  const double mean_a = std::accumulate(ra.begin(), ra.end(), 0.0) / n;
  const double mean_b = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    ab += (ra[i] - mean_a) * (rb[i] - mean_b);
    aa += (ra[i] - mean_a) * (ra[i] - mean_a);
    bb += (rb[i] - mean_b) * (rb[i] - mean_b);
  }
  return ab / std::sqrt(aa * bb);
}

inline double cosine(const Eigen::RowVectorXd& a, const Eigen::RowVectorXd& b) {
  return a.dot(b) / (a.norm() * b.norm());
}

/// Pairwise cosines of the rows, i < j, in row-major order of the upper triangle.
inline std::vector<double> pairwise_cosines(const row_matrix& embeddings) {
  const Eigen::MatrixXd e = embeddings.cast<double>();
  std::vector<double> out;
  for (index_t i = 0; i < e.rows(); ++i)
    for (index_t j = i + 1; j < e.rows(); ++j) out.push_back(cosine(e.row(i), e.row(j)));
  return out;
}

/// `embeddings` against `reference`, one sentence a row in both.
inline embedding_agreement agreement(const row_matrix& embeddings, const row_matrix& reference) {
  embedding_agreement out{0, 1, 0};
  for (index_t i = 0; i < reference.rows(); ++i) {
    const double c = cosine(embeddings.row(i).cast<double>(), reference.row(i).cast<double>());
    out.cosine_mean += c / static_cast<double>(reference.rows());
    out.cosine_min = std::min(out.cosine_min, c);
  }
  out.spearman = spearman(pairwise_cosines(embeddings), pairwise_cosines(reference));
  return out;
}

}  // namespace qcodec::examples::bert
