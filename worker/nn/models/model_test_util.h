// Test helpers shared by the model folders' tests: models built from config
// text over a small fixed shape, and the finite-difference check of a whole
// model. For tests only (links GoogleTest).
#ifndef CTRPS_WORKER_NN_MODELS_MODEL_TEST_UTIL_H_
#define CTRPS_WORKER_NN_MODELS_MODEL_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/proto/config.pb.h"
#include "worker/nn/gradient_check.h"
#include "worker/nn/models/ctr_model.h"

namespace ctrps::nn::testing {

// B = 4 samples of F = 3 fields of D = 4.
inline constexpr int kBatch = 4, kFields = 3, kDim = 4;

// ModelConfig from text format; a parse error fails the test.
ModelConfig Config(const std::string& text);

// CreateModel over kFields x kDim; a failure fails the test and gives null.
std::unique_ptr<CtrModel> Make(const std::string& text, uint64_t seed = 1);

// Checks d(loss)/d(emb), d(loss)/d(linear) and every parameter gradient of
// the model against central differences, loss = sum_b r_b * logit_b, with
// random parameters. training = false checks the evaluation path (after one
// training forward has moved the running statistics).
void CheckModelGradients(const std::string& text, bool training = true);

// Checks d(loss)/d(emb) and every parameter gradient against central
// differences for the model's own training loss, loss = Loss(labels) after
// an evaluation Forward (so dropout must not matter to the result): covers
// the loss rule and the auxiliary logits it reads (FCN's Tri-BCE).
void CheckTrainingLossGradients(const std::string& text);

// Sequence models: field 1 is a history of up to kLen1 rows, field 2 one of
// up to kLen2 rows, both with field 0 as their target.
inline constexpr int kLen1 = 5, kLen2 = 3;
const std::vector<SequenceSpec>& SequenceSpecs();

// Random inputs for SequenceSpecs(), with lengths that include 0 and max_len.
struct SequenceData {
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> seq1 = RandomValues(kBatch * kLen1 * kDim, 4);
  std::vector<float> seq2 = RandomValues(kBatch * kLen2 * kDim, 5);
  std::vector<int32_t> len1 = {5, 0, 2, 4};
  std::vector<int32_t> len2 = {1, 3, 0, 3};

  ModelInput Input(int batch = kBatch);
};

// CreateModel with `specs`; a failure fails the test and gives null.
std::unique_ptr<CtrModel> MakeSequenceModel(
    const std::string& text, uint64_t seed = 1,
    const std::vector<SequenceSpec>& specs = SequenceSpecs());

// As CheckModelGradients, with the two sequences of SequenceData and their
// gradients; also EXPECTs zero gradient in the sequence fields' emb slots.
// `prepare` may move the data (after parameters are randomised) before the
// check.
void CheckSequenceModelGradients(
    const std::string& text, bool training = true,
    const std::function<void(CtrModel&, SequenceData*)>& prepare = nullptr);

}  // namespace ctrps::nn::testing

#endif  // CTRPS_WORKER_NN_MODELS_MODEL_TEST_UTIL_H_
