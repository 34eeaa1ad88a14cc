// CTR models over field embeddings: the dense tower a worker trains.
//
// A worker pulls each field's embedding (pooled for multi-valued fields) and,
// for models that have a first-order term, a 1-dim weight per field; the
// model turns them into one logit per sample and, backward, into gradients
// for those embeddings (pushed to the PS) and for its own dense parameters
// (averaged across workers, then updated by a DenseOptimizer).
//
//   auto model = CreateModel(config.model(), num_fields, dim, seed);
//   ModelInput in{batch, num_fields, dim, emb, linear};
//   model->params().ZeroGrads();
//   model->Forward(in, /*training=*/true, logits);
//   double loss = SigmoidCrossEntropyWithLogits(logits, labels, d_logits);
//   ModelInputGrad grad{d_emb, d_linear};
//   model->Backward(in, d_logits, &grad);
//   // allreduce params().grads(), then optimizer->Step(...)
#ifndef CTRPS_WORKER_NN_CTR_MODEL_H_
#define CTRPS_WORKER_NN_CTR_MODEL_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/nn/parameter_arena.h"

namespace ctrps::nn {

struct ModelInput {
  int batch = 0;                  // B
  int num_fields = 0;             // F
  int dim = 0;                    // D
  const float* emb = nullptr;     // [B, F, D] field embeddings (multi-valued fields pooled)
  const float* linear = nullptr;  // [B, F] first-order weights, present iff NeedsLinear()
};

// Same shapes as ModelInput; overwritten by Backward().
struct ModelInputGrad {
  float* d_emb = nullptr;
  float* d_linear = nullptr;  // required iff NeedsLinear()
};

// Not thread-safe: one model per training thread. Buffers are kept between
// steps and resized only when the batch size changes.
class CtrModel {
 public:
  virtual ~CtrModel() = default;

  // LR, FM, Wide&Deep and DeepFM read a 1-dim first-order weight per field.
  virtual bool NeedsLinear() const = 0;

  // logits [B]. `in` must have the num_fields and dim the model was created
  // with. Training uses batch statistics (BatchNorm, Dice), updates their
  // running statistics and applies dropout with a fresh mask per call;
  // evaluation uses the running statistics and no dropout.
  virtual void Forward(const ModelInput& in, bool training, float* logits) = 0;

  // After Forward(in, ...) on the same `in`: given d(loss)/d(logits) [B],
  // overwrites grad->d_emb (and grad->d_linear) and adds the parameter
  // gradients to params().grads() (the caller clears them with ZeroGrads()).
  virtual void Backward(const ModelInput& in, const float* d_logits, ModelInputGrad* grad) = 0;

  // The dense parameters (values, grads) and buffers (running statistics).
  virtual ParameterArena& params() = 0;

  // 2 x multiply-adds of the forward pass per sample (for benchmarks).
  virtual int64_t FlopsPerSample() const = 0;

  // Seeds the dropout masks separately from the parameters, so workers that
  // share the creation seed (and so start from identical parameters) draw
  // different masks. Defaults to the creation seed.
  virtual void SetDropoutSeed(uint64_t seed) = 0;
};

// Builds config.type() over `num_fields` fields of `dim`-dimensional
// embeddings, composed as FuxiCTR composes it:
//   LR        sum_f linear_f + b
//   FM        LR + sum_{i<j} <e_i, e_j>
//   DNN       MLP(flat emb) -> 1
//   WIDE_DEEP sum_f linear_f (no bias) + MLP(flat emb) -> 1
//   DEEPFM    FM + MLP(flat emb) -> 1
//   DCN       Linear([CrossNet(flat emb), MLP(flat emb)]) -> 1 (MLP omitted without hidden_units)
//   DCNV2     parallel: Linear([CrossNetV2(x), MLP(x)]); stacked: Linear(MLP(CrossNetV2(x)));
//             low_rank > 0 uses W = U V; without hidden_units: Linear(CrossNetV2(x))
//   FINALMLP  two MLP streams over feature-selected flat emb, bilinear fusion with num_heads
// MLPs follow hidden_units, activation, dropout and batch_norm (FinalMLP: its
// mlp1_* / mlp2_* / fs_hidden_units fields). Parameters are initialised
// deterministically from `seed` (Xavier-uniform weights, zero biases).
//
// Errors: InvalidArgument for a bad shape or option (the message names the
// config field), Unimplemented for MEANPOOL, DIN and SDIM (sequence models).
absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_CTR_MODEL_H_
