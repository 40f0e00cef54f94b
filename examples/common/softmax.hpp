// Softmax cross-entropy and argmax over class scores, shared by the models.
// Internal to the example models; not part of their public interface.
#pragma once

#include <cstdint>

#include <Eigen/Core>

namespace platoon::examples::detail {

/// Column-major float matrix: the models keep one sample per column.
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

/// `logits` holds one column of class scores per sample. Returns the mean
/// cross-entropy of the softmax against `labels` and replaces `logits` by the
/// gradient of that mean with respect to the scores: (softmax - onehot) / n.
float softmax_cross_entropy(Eigen::Ref<Matrix> logits, const std::uint8_t* labels);

/// Writes the index of the largest score of each column to out[col].
void argmax_columns(const Eigen::Ref<const Matrix>& scores, std::uint8_t* out);

}  // namespace platoon::examples::detail
