// The CtrModel every registered model is: a Graph over the field embeddings
// (and first-order weights, and behaviour sequences) that a model's builder
// fills with layers and ends with set_logits().
#ifndef CTRPS_WORKER_NN_MODELS_GRAPH_MODEL_H_
#define CTRPS_WORKER_NN_MODELS_GRAPH_MODEL_H_

#include <cstdint>
#include <span>
#include <vector>

#include "worker/nn/graph.h"
#include "worker/nn/layers/sequence/sequence_pooling.h"
#include "worker/nn/loss_rule.h"
#include "worker/nn/models/ctr_model.h"
#include "worker/nn/parameter_arena.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

// Not thread-safe, as CtrModel.
class GraphModel final : public CtrModel {
 public:
  // Adds the emb input [B, num_fields * dim] and, with `needs_linear`, the
  // linear input [B, num_fields]. Parameters are seeded from `seed`.
  GraphModel(int num_fields, int dim, bool needs_linear, uint64_t seed);

  Graph* graph() { return &graph_; }
  int num_fields() const { return num_fields_; }
  int dim() const { return dim_; }
  uint64_t seed() const { return seed_; }
  // [B, F * D], the field embeddings (sequence fields' slots not read).
  Node* emb() const { return emb_; }
  // [B, F] first-order weights; null unless created with needs_linear.
  Node* linear() const { return linear_; }

  // The model's output: a per-sample node of width num_outputs. Must be set
  // exactly once, after the layers that produce it were added.
  void set_logits(Node* logits) { logits_ = logits; }
  Node* logits() const { return logits_; }

  // Per-sample nodes of width 1 that the training loss reads beside the
  // logits (NumAuxiliaryLogits(rule) of them), and the rule. Without a call
  // the loss is the BCE of the logits. At most once, after set_logits().
  void set_loss(LossRule rule, std::vector<Node*> auxiliary_logits);
  LossRule loss_rule() const { return loss_rule_; }

  // Adds the input node [B, spec.max_len * dim] of the next sequence. Every
  // sequence must then get its pooling layer with set_pooling(i, ...), i its
  // order of addition, which receives the batch's lengths.
  Node* AddSequence(const SequenceSpec& spec);
  void set_pooling(size_t i, SequencePooling* pool) { pools_[i] = pool; }

  bool NeedsLinear() const override { return linear_ != nullptr; }
  void Forward(const ModelInput& in, bool training, float* logits) override;
  double Loss(std::span<const float> labels, std::span<float> d_logits) override;
  void Backward(const ModelInput& in, const float* d_logits, ModelInputGrad* grad) override;
  ParameterArena& params() override { return arena_; }
  int64_t FlopsPerSample() const override { return graph_.FlopsPerSample(); }
  void SetDropoutSeed(uint64_t seed) override { dropout_seed_ = seed; }

 private:
  int num_fields_;
  int dim_;
  uint64_t seed_;
  ParameterArena arena_;
  Graph graph_;
  uint64_t dropout_seed_;
  uint64_t step_ = 0;
  Node* emb_ = nullptr;
  Node* linear_ = nullptr;
  Node* logits_ = nullptr;
  LossRule loss_rule_ = LossRule::kBce;
  std::vector<Node*> aux_;
  std::vector<AlignedVector> d_aux_;  // d(loss)/d(aux_[k]) from the last Loss()
  bool aux_grads_valid_ = false;      // Loss() ran since the last Forward()
  std::vector<SequenceSpec> specs_;
  std::vector<Node*> seq_nodes_;
  std::vector<SequencePooling*> pools_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_GRAPH_MODEL_H_
