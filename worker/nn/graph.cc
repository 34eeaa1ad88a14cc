#include "worker/nn/graph.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "common/hash.h"

namespace ctrps::nn {

Node* Graph::AddInput(int64_t width, bool needs_grad) {
  auto node = std::make_unique<Node>();
  node->width_ = width;
  node->needs_grad_ = needs_grad;
  node->external_ = true;
  nodes_.push_back(std::move(node));
  return nodes_.back().get();
}

void Graph::BindInput(Node* input, const float* value, float* grad) {
  assert(input->external_);
  // The graph never writes an input's value (see Node::mutable_value()).
  input->value_ = const_cast<float*>(value);
  input->grad_ = grad;
}

Node* Graph::NewNode(int64_t width, bool per_sample) {
  auto node = std::make_unique<Node>();
  node->width_ = width;
  node->per_sample_ = per_sample;
  node->producer_ = static_cast<int>(layers_.size());
  nodes_.push_back(std::move(node));
  return nodes_.back().get();
}

uint64_t Graph::NextLayerSeed() const {
  return Mix64(seed_ ^ Mix64(0x6c61796572ULL + layers_.size()));
}

void Graph::Forward(int64_t batch, const ForwardContext& ctx) {
  if (batch != batch_) {
    batch_ = batch;
    for (auto& node : nodes_) {
      node->rows_ = node->per_sample_ ? batch : 1;
      if (!node->external_) {
        node->value_storage_.resize(node->size());
        node->value_ = node->value_storage_.data();
        node->grad_ = nullptr;  // sized on the next Backward()
      }
    }
  }
  for (auto& layer : layers_) layer->Forward(ctx);
}

void Graph::Backward(std::span<Node* const> outputs, std::span<const float* const> seeds) {
  assert(outputs.size() == seeds.size());
  for (auto& node : nodes_) {
    node->grad_written_ = false;
    if (!node->external_ && node->grad_ == nullptr) {
      node->grad_storage_.resize(node->size());
      node->grad_ = node->grad_storage_.data();
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    Node* out = outputs[i];
    std::memcpy(out->grad_, seeds[i], sizeof(float) * out->size());
    out->grad_written_ = true;
  }
  // Nodes grouped by producer, so each layer's unwritten outputs can be zeroed
  // just before it runs. Node counts are small; a linear scan is fine.
  for (int l = static_cast<int>(layers_.size()) - 1; l >= 0; --l) {
    for (auto& node : nodes_) {
      if (node->producer_ == l && !node->grad_written_) {
        std::fill(node->grad_, node->grad_ + node->size(), 0.0f);
        node->grad_written_ = true;
      }
    }
    layers_[l]->Backward();
  }
  for (auto& node : nodes_) {
    if (node->external_ && node->needs_grad_ && !node->grad_written_ && node->grad_ != nullptr) {
      std::fill(node->grad_, node->grad_ + node->size(), 0.0f);
    }
  }
}

int64_t Graph::FlopsPerSample() const {
  int64_t flops = 0;
  for (const auto& layer : layers_) flops += layer->FlopsPerSample();
  return flops;
}

}  // namespace ctrps::nn
