// Tensor: a small row-major float tensor backed by a 64-byte aligned buffer.
//
// Resize() keeps the allocation when the new size fits in the capacity, so a
// layer that calls Resize() every step allocates only when the batch grows.
#ifndef CTRPS_WORKER_NN_TENSOR_H_
#define CTRPS_WORKER_NN_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <span>
#include <vector>

namespace ctrps::nn {

// Alignment of every float buffer in this library (one AVX-512 register, one
// cache line).
inline constexpr std::size_t kAlignBytes = 64;

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlignBytes)));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(kAlignBytes)); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
};

using AlignedVector = std::vector<float, AlignedAllocator<float>>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::initializer_list<int64_t> shape) { Resize(shape); }
  explicit Tensor(std::span<const int64_t> shape) { Resize(shape); }

  // Sets the shape; new elements are zero, kept elements keep their values
  // (as std::vector::resize). Allocates only when the size exceeds the
  // capacity. Every dimension must be >= 0.
  void Resize(std::span<const int64_t> shape);
  void Resize(std::initializer_list<int64_t> shape) {
    Resize(std::span<const int64_t>(shape.begin(), shape.size()));
  }

  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t size() const { return static_cast<int64_t>(data_.size()); }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::span<float> span() { return {data_.data(), data_.size()}; }
  std::span<const float> span() const { return {data_.data(), data_.size()}; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  void Fill(float value);

 private:
  std::vector<int64_t> shape_;
  AlignedVector data_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_TENSOR_H_
