// The dense tower's computation graph: nodes (activations and their
// gradients), layers (forward, backward, parameters) and the graph that runs
// them.
//
// A model is built by adding layers to a Graph in forward order; each layer
// reads input nodes and creates its output nodes through the graph. Forward()
// runs the layers in that order and Backward() in reverse, so no model orders
// its own backward pass. Every node is a row-major [rows, width] matrix:
// rows = batch for per-sample nodes, rows = 1 for nodes that do not depend on
// the sample (a learned context vector and what is computed from it only).
//
// Gradient protocol: a node may feed several layers. During Backward() the
// first layer to write d(loss)/d(node) overwrites the buffer and the others
// add to it; Node::BeginGradWrite() tells a layer which to do, so no gradient
// buffer is ever cleared just to be added to. Nodes that receive no gradient
// (an unused output) read as zero. Parameter gradients are always added to
// the ParameterArena; clearing them is the trainer's job (ZeroGrads()).
//
// Buffers are resized when the batch size changes and otherwise reused, so
// steady-state training allocates nothing. Not thread-safe.
#ifndef CTRPS_WORKER_NN_GRAPH_H_
#define CTRPS_WORKER_NN_GRAPH_H_

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "worker/nn/parameter_arena.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

struct ForwardContext {
  bool training = false;
  // Seeds per-step randomness (dropout masks): the same step gives the same
  // masks, so a step can be replayed.
  uint64_t step = 0;
};

class Node {
 public:
  int64_t rows() const { return rows_; }
  int64_t width() const { return width_; }
  int64_t size() const { return rows_ * width_; }
  bool per_sample() const { return per_sample_; }
  // False only for inputs whose gradient nobody wants; layers skip them.
  bool needs_grad() const { return needs_grad_; }

  const float* value() const { return value_; }
  // Written only by the layer that produces the node.
  float* mutable_value() { return value_; }
  float* grad() { return grad_; }
  const float* grad() const { return grad_; }

  // Called by a layer before it writes this node's gradient. Returns true if
  // the gradient buffer already holds another layer's contribution (add to
  // it), false if the caller must overwrite it.
  bool BeginGradWrite() {
    const bool accumulate = grad_written_;
    grad_written_ = true;
    return accumulate;
  }

 private:
  friend class Graph;
  int64_t rows_ = 0;
  int64_t width_ = 0;
  bool per_sample_ = true;
  bool needs_grad_ = true;
  bool external_ = false;  // an input bound to caller memory
  bool grad_written_ = false;
  int producer_ = -1;  // index of the producing layer; -1 for inputs
  float* value_ = nullptr;
  float* grad_ = nullptr;
  AlignedVector value_storage_;
  AlignedVector grad_storage_;
};

// Stores `f(i)` for i in [0, n) into `dst`, or adds it when `accumulate`.
template <typename F>
inline void StoreGrad(bool accumulate, float* dst, int64_t n, F f) {
  if (accumulate) {
    for (int64_t i = 0; i < n; ++i) dst[i] += f(i);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = f(i);
  }
}

// One operation of the graph. A layer keeps pointers to its input and output
// nodes (owned by the graph) and the slots of its parameters (owned by the
// arena). Backward() reads the output gradients and the values its forward
// pass left behind, writes input gradients (see the protocol above) and adds
// parameter gradients; it is valid only after a Forward() on the same batch.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual void Forward(const ForwardContext& ctx) = 0;
  virtual void Backward() = 0;
  // 2 x multiply-adds of the forward pass per sample (matrix products and
  // the like; elementwise work counts as 0). Layers on rows = 1 nodes count 0.
  virtual int64_t FlopsPerSample() const { return 0; }
};

class Graph {
 public:
  // `arena` must outlive the graph. `seed` seeds the layers' randomness.
  Graph(ParameterArena* arena, uint64_t seed) : arena_(arena), seed_(seed) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  ParameterArena* arena() { return arena_; }

  // A per-sample input of `width` columns whose memory the caller provides
  // with BindInput() before each Forward()/Backward().
  Node* AddInput(int64_t width, bool needs_grad);

  // Points `input` at caller memory: value [batch, width], read-only for the
  // graph; grad [batch, width], overwritten by Backward() (may be null when
  // the input does not need a gradient).
  void BindInput(Node* input, const float* value, float* grad);

  // Constructs layer L(this, args...) and appends it. The layer's
  // constructor creates its outputs with NewNode().
  template <typename L, typename... Args>
  L* Add(Args&&... args) {
    auto layer = std::make_unique<L>(this, std::forward<Args>(args)...);
    L* raw = layer.get();
    layers_.push_back(std::move(layer));
    return raw;
  }

  // For layer constructors: a node produced by the layer being constructed.
  Node* NewNode(int64_t width, bool per_sample);

  // A seed for the layer being constructed, distinct per layer.
  uint64_t NextLayerSeed() const;

  // Runs every layer forward on `batch` rows.
  void Forward(int64_t batch, const ForwardContext& ctx);

  // Sets d(loss)/d(outputs[i]) = seeds[i] (each [rows, width]) and runs every
  // layer backward, after a Forward() on the same batch. Bound inputs that
  // receive no gradient are zeroed.
  void Backward(std::span<Node* const> outputs, std::span<const float* const> seeds);
  void Backward(Node* output, const float* seed) {
    Backward(std::span<Node* const>(&output, 1), std::span<const float* const>(&seed, 1));
  }

  int64_t FlopsPerSample() const;
  int num_layers() const { return static_cast<int>(layers_.size()); }

 private:
  ParameterArena* arena_;
  uint64_t seed_;
  int64_t batch_ = -1;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_GRAPH_H_
