#include "worker/nn/tensor.h"

#include <algorithm>
#include <cassert>

namespace ctrps::nn {

void Tensor::Resize(std::span<const int64_t> shape) {
  shape_.assign(shape.begin(), shape.end());
  int64_t n = 1;
  for (int64_t d : shape_) {
    assert(d >= 0);
    n *= d;
  }
  data_.resize(static_cast<std::size_t>(n));
}

void Tensor::Fill(float value) { std::fill(data_.begin(), data_.end(), value); }

}  // namespace ctrps::nn
