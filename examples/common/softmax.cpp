#include "common/softmax.hpp"

#include <cmath>

namespace platoon::examples::detail {

float softmax_cross_entropy(Eigen::Ref<Matrix> logits, const std::uint8_t* labels) {
  const Eigen::Index n = logits.cols();
  const float inv_n = 1.0f / static_cast<float>(n);
  double total = 0.0;  // double: summing thousands of float losses loses digits
  for (Eigen::Index j = 0; j < n; ++j) {
    auto column = logits.col(j);
    // Shifting by the maximum keeps exp() from overflowing.
    const float shift = column.maxCoeff();
    const Eigen::Index y = labels[j];
    const float shifted_label_score = column(y) - shift;
    column.array() = (column.array() - shift).exp();
    const float sum = column.sum();
    // log-softmax form: stays finite even when exp() of the label's score underflows.
    total += std::log(sum) - shifted_label_score;
    column *= inv_n / sum;
    column(y) -= inv_n;
  }
  return static_cast<float>(total / static_cast<double>(n));
}

void argmax_columns(const Eigen::Ref<const Matrix>& scores, std::uint8_t* out) {
  for (Eigen::Index j = 0; j < scores.cols(); ++j) {
    Eigen::Index best = 0;
    scores.col(j).maxCoeff(&best);
    out[j] = static_cast<std::uint8_t>(best);
  }
}

}  // namespace platoon::examples::detail
