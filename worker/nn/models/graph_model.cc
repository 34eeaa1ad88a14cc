#include "worker/nn/models/graph_model.h"

#include <array>
#include <cassert>
#include <cstring>
#include <utility>
#include <vector>

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
  aux_grads_valid_ = false;
  std::memcpy(logits, logits_->value(), sizeof(float) * in.batch * logits_->width());
}

void GraphModel::set_loss(LossRule rule, std::vector<Node*> auxiliary_logits) {
  assert(static_cast<int>(auxiliary_logits.size()) == NumAuxiliaryLogits(rule));
  assert(auxiliary_logits.size() <= kMaxAuxiliaryLogits);
  loss_rule_ = rule;
  aux_ = std::move(auxiliary_logits);
  d_aux_.resize(aux_.size());
}

double GraphModel::Loss(std::span<const float> labels, std::span<float> d_logits) {
  assert(logits_->width() == 1);
  const int64_t batch = logits_->rows();
  assert(static_cast<int64_t>(labels.size()) == batch &&
         static_cast<int64_t>(d_logits.size()) == batch);
  std::array<std::span<const float>, kMaxAuxiliaryLogits> aux;
  std::array<std::span<float>, kMaxAuxiliaryLogits> d_aux;
  const size_t n = aux_.size();
  for (size_t k = 0; k < n; ++k) {
    assert(aux_[k]->width() == 1 && aux_[k]->rows() == batch);
    d_aux_[k].resize(batch);
    aux[k] = std::span<const float>(aux_[k]->value(), batch);
    d_aux[k] = std::span<float>(d_aux_[k].data(), batch);
  }
  const double loss =
      ComputeLoss(loss_rule_, std::span<const float>(logits_->value(), batch),
                  std::span(aux.data(), n), labels, d_logits, std::span(d_aux.data(), n));
  aux_grads_valid_ = true;
  return loss;
}

void GraphModel::Backward(const ModelInput& in, const float* d_logits, ModelInputGrad* grad) {
  graph_.BindInput(emb_, in.emb, grad->d_emb);
  if (linear_ != nullptr) graph_.BindInput(linear_, in.linear, grad->d_linear);
  assert(grad->d_seq_emb.size() == specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    graph_.BindInput(seq_nodes_[i], in.sequences[i].emb, grad->d_seq_emb[i]);
  }
  if (aux_.empty() || !aux_grads_valid_) {
    graph_.Backward(logits_, d_logits);
    return;
  }
  std::array<Node*, kMaxAuxiliaryLogits + 1> outputs = {logits_};
  std::array<const float*, kMaxAuxiliaryLogits + 1> seeds = {d_logits};
  for (size_t k = 0; k < aux_.size(); ++k) {
    outputs[k + 1] = aux_[k];
    seeds[k + 1] = d_aux_[k].data();
  }
  graph_.Backward(std::span(outputs.data(), aux_.size() + 1),
                  std::span(seeds.data(), aux_.size() + 1));
}

}  // namespace ctrps::nn
