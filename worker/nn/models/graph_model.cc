#include "worker/nn/models/graph_model.h"

#include <cassert>
#include <cstring>

#include "common/hash.h"

namespace ctrps::nn {
namespace {

constexpr uint64_t kGraphSeedSalt = 0x6772617068ULL;

}  // namespace

GraphModel::GraphModel(int num_fields, int dim, bool needs_linear, uint64_t seed)
    : num_fields_(num_fields),
      dim_(dim),
      seed_(seed),
      arena_(seed),
      graph_(&arena_, Mix64(seed ^ kGraphSeedSalt)),
      dropout_seed_(seed) {
  emb_ = graph_.AddInput(static_cast<int64_t>(num_fields) * dim, /*needs_grad=*/true);
  if (needs_linear) linear_ = graph_.AddInput(num_fields, /*needs_grad=*/true);
}

Node* GraphModel::AddSequence(const SequenceSpec& spec) {
  specs_.push_back(spec);
  seq_nodes_.push_back(
      graph_.AddInput(static_cast<int64_t>(spec.max_len) * dim_, /*needs_grad=*/true));
  pools_.push_back(nullptr);
  return seq_nodes_.back();
}

void GraphModel::Forward(const ModelInput& in, bool training, float* logits) {
  assert(in.num_fields == num_fields_ && in.dim == dim_);
  assert(linear_ == nullptr || in.linear != nullptr);
  graph_.BindInput(emb_, in.emb, nullptr);
  if (linear_ != nullptr) graph_.BindInput(linear_, in.linear, nullptr);
  assert(in.sequences.size() == specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    const SequenceInput& seq = in.sequences[i];
    assert(seq.field == specs_[i].field && seq.target_field == specs_[i].target_field &&
           seq.max_len == specs_[i].max_len);
    graph_.BindInput(seq_nodes_[i], seq.emb, nullptr);
    pools_[i]->set_lengths(seq.lengths);
  }
  ForwardContext ctx{training, 0};
  if (training) ctx.step = Mix64(dropout_seed_ ^ Mix64(++step_));
  graph_.Forward(in.batch, ctx);
  std::memcpy(logits, logits_->value(), sizeof(float) * in.batch * logits_->width());
}

void GraphModel::Backward(const ModelInput& in, const float* d_logits, ModelInputGrad* grad) {
  graph_.BindInput(emb_, in.emb, grad->d_emb);
  if (linear_ != nullptr) graph_.BindInput(linear_, in.linear, grad->d_linear);
  assert(grad->d_seq_emb.size() == specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    graph_.BindInput(seq_nodes_[i], in.sequences[i].emb, grad->d_seq_emb[i]);
  }
  graph_.Backward(logits_, d_logits);
}

}  // namespace ctrps::nn
