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
//   double loss = model->Loss(labels, d_logits);
//   ModelInputGrad grad{d_emb, d_linear};
//   model->Backward(in, d_logits, &grad);
//   // allreduce params().grads(), then optimizer->Step(...)
//
// Sequence models (traits: sequence) also take behaviour sequences: each
// fills the emb slot of one field with its pooled history, so the MLP still
// sees F fields of D. Their shape is fixed when the model is created:
//
//   std::vector<SequenceSpec> specs = {{.field = 3, .target_field = 1, .max_len = 500}};
//   auto model = CreateModel(config.model(), num_fields, dim, seed, specs);
//   in.sequences = {{3, 1, 500, hist_emb, hist_lengths}};   // same order as specs
//   grad.d_seq_emb = {d_hist_emb};
#ifndef CTRPS_WORKER_NN_MODELS_CTR_MODEL_H_
#define CTRPS_WORKER_NN_MODELS_CTR_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/nn/parameter_arena.h"

namespace ctrps::nn {

// One behaviour sequence of a batch (a SEQUENCE feature), for the sequence
// models.
struct SequenceInput {
  int field = 0;                     // the slot in [0, F) of emb that the pooled history fills
  int target_field = -1;             // the field whose embedding is the query (DIN, SDIM); -1: none
  int max_len = 0;                   // L
  const float* emb = nullptr;        // [B, L, D]; sample b's rows past lengths[b] are not read
  const int32_t* lengths = nullptr;  // [B], each in [0, L]
};

struct ModelInput {
  int batch = 0;                  // B
  int num_fields = 0;             // F
  int dim = 0;                    // D
  const float* emb = nullptr;     // [B, F, D] field embeddings (multi-valued fields pooled);
                                  // the slots of sequence fields are not read
  const float* linear = nullptr;  // [B, F] first-order weights, present iff NeedsLinear()
  // One per SequenceSpec the model was created with, in that order, with the
  // same field, target_field and max_len; empty for the other models.
  std::vector<SequenceInput> sequences = {};
};

// Same shapes as ModelInput; overwritten by Backward().
struct ModelInputGrad {
  float* d_emb = nullptr;              // zero in the slots of sequence fields; the target field's
                                       // slot includes the attention's gradient w.r.t. the query
  float* d_linear = nullptr;           // required iff NeedsLinear()
  std::vector<float*> d_seq_emb = {};  // one [B, L, D] per sequence; zero past each length
};

// Where a sequence model's behaviour sequence goes (see SequenceInput).
struct SequenceSpec {
  int field = 0;
  int target_field = -1;  // the query's field, for the models that attend to one; -1: none
  int max_len = 0;
};

// Not thread-safe: one model per training thread. Buffers are kept between
// steps and grow only with the batch size (DIN: with the batch's number of
// valid history rows).
class CtrModel {
 public:
  virtual ~CtrModel() = default;

  // Reads a 1-dim first-order weight per field (the type's needs_linear
  // trait).
  virtual bool NeedsLinear() const = 0;

  // logits [B, num_outputs] (the type's trait; 1 for every model the
  // trainer runs today). `in` must have the num_fields and dim the model was created
  // with. Training uses batch statistics (BatchNorm, Dice), updates their
  // running statistics and applies dropout with a fresh mask per call;
  // evaluation uses the running statistics and no dropout.
  virtual void Forward(const ModelInput& in, bool training, float* logits) = 0;

  // After Forward(in, ...): the batch's training loss under the model's loss
  // rule (worker/nn/loss_rule.h; the mean BCE of the logits for all but the
  // models with auxiliary logits, FCN's Tri-BCE) given labels [B] in [0, 1],
  // and d(loss)/d(logits) [B] into d_logits. The gradient w.r.t. auxiliary
  // logits stays in the model, for the next Backward() on the same batch.
  // Needs num_outputs 1.
  virtual double Loss(std::span<const float> labels, std::span<float> d_logits) = 0;

  // After Forward(in, ...) on the same `in`: given d(loss)/d(logits) [B],
  // overwrites grad->d_emb (and grad->d_linear, grad->d_seq_emb) and adds the parameter
  // gradients to params().grads() (the caller clears them with ZeroGrads()).
  // Auxiliary logits, if any, get the gradient the last Loss() since that
  // Forward() left, or none.
  virtual void Backward(const ModelInput& in, const float* d_logits, ModelInputGrad* grad) = 0;

  // The dense parameters (values, grads) and buffers (running statistics;
  // SDIM's fixed hyperplanes, identical on every worker built from the same
  // seed).
  virtual ParameterArena& params() = 0;

  // 2 x multiply-adds of the forward pass per sample (for benchmarks).
  // Sequence models count full histories (max_len rows).
  virtual int64_t FlopsPerSample() const = 0;

  // Seeds the dropout masks separately from the parameters, so workers that
  // share the creation seed (and so start from identical parameters) draw
  // different masks. Defaults to the creation seed.
  virtual void SetDropoutSeed(uint64_t seed) = 0;
};

// Builds config.type() over `num_fields` fields of `dim`-dimensional
// embeddings with the builder its folder registers
// (worker/nn/models/<name>/, whose README gives the formula). Parameters are
// initialised deterministically from `seed` (Xavier-uniform weights, zero
// biases).
//
// Errors: InvalidArgument for a bad shape, a config field outside its
// declared range or an option the model rejects (the message names the
// config field), for an unregistered type, and for a sequence model, which
// needs the overload below.
absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed);

// As above, with behaviour sequences, for the sequence models (traits:
// sequence), each filling the emb slot of its field with the pooled history.
// `sequences` fields must be distinct and in [0, num_fields), max_len > 0;
// the models that attend to a target need a target field that is not itself
// a sequence field. Other model types take no sequences.
// Errors: InvalidArgument naming the sequence or config field at fault.
absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed,
                                                      const std::vector<SequenceSpec>& sequences);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_CTR_MODEL_H_
