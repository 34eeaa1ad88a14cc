#include "worker/nn/models/model_test_util.h"

#include <cmath>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ctrps::nn::testing {

ModelConfig Config(const std::string& text) {
  ModelConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

std::unique_ptr<CtrModel> Make(const std::string& text, uint64_t seed) {
  auto model = CreateModel(Config(text), kFields, kDim, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

namespace {

// An input of the model that the check perturbs, and the gradient Backward
// wrote for it.
struct CheckedInput {
  const char* name;
  float* values;
  const float* grad;
  size_t size;
};

// Runs forward and backward with loss = sum_b r_b * logit_b (Backward
// writes into `grad`, whose buffers `inputs` name) and EXPECTs the input and
// parameter gradients to match central differences. Before the check,
// `after_backward` may look at the gradients (none for null).
void ExpectModelGradientsMatch(CtrModel* model, const ModelInput& in, bool training,
                               ModelInputGrad* grad, const std::vector<CheckedInput>& inputs,
                               const std::function<void()>& after_backward = nullptr) {
  const std::vector<float> seed = RandomValues(kBatch, 3);
  std::vector<float> logits(kBatch);
  auto loss = [&] {
    model->Forward(in, training, logits.data());
    double l = 0;
    for (int b = 0; b < kBatch; ++b) l += double{seed[b]} * logits[b];
    return l;
  };
  // For the evaluation path, move the running statistics off their initial
  // values first.
  if (!training) model->Forward(in, true, logits.data());
  model->params().ZeroGrads();
  loss();
  model->Backward(in, seed.data(), grad);
  if (after_backward) after_backward();
  const std::vector<float> param_grads(model->params().grads().begin(),
                                       model->params().grads().end());
  GradCheckOptions options;
  for (const CheckedInput& x : inputs) {
    ExpectFiniteDifferencesMatch(x.name, loss, x.values, x.grad, x.size, options);
  }
  for (const ParamInfo& p : model->params().parameters()) {
    ExpectFiniteDifferencesMatch(p.name, loss, model->params().value(p.slot),
                                 param_grads.data() + p.slot.offset, p.slot.size, options);
  }
}

}  // namespace

void CheckModelGradients(const std::string& text, bool training) {
  SCOPED_TRACE(text);
  std::unique_ptr<CtrModel> model = Make(text);
  ASSERT_NE(model, nullptr);
  RandomizeParameters(&model->params(), 7);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> linear = RandomValues(kBatch * kFields, 2);
  const bool has_linear = model->NeedsLinear();
  ModelInput in{kBatch, kFields, kDim, emb.data(), has_linear ? linear.data() : nullptr};
  std::vector<float> d_emb(emb.size(), std::nanf("")), d_linear(linear.size(), std::nanf(""));
  ModelInputGrad grad{d_emb.data(), has_linear ? d_linear.data() : nullptr};
  std::vector<CheckedInput> inputs = {{"emb", emb.data(), d_emb.data(), emb.size()}};
  if (has_linear) inputs.push_back({"linear", linear.data(), d_linear.data(), linear.size()});
  ExpectModelGradientsMatch(model.get(), in, training, &grad, inputs);
}

void CheckTrainingLossGradients(const std::string& text) {
  SCOPED_TRACE(text);
  std::unique_ptr<CtrModel> model = Make(text);
  ASSERT_NE(model, nullptr);
  ASSERT_FALSE(model->NeedsLinear());
  RandomizeParameters(&model->params(), 7);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  const std::vector<float> labels = {1, 0, 0, 1};
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  std::vector<float> logits(kBatch), d_logits(kBatch), d_emb(emb.size(), std::nanf(""));
  auto loss = [&] {
    model->Forward(in, /*training=*/false, logits.data());
    return model->Loss(labels, d_logits);
  };
  model->params().ZeroGrads();
  loss();
  ModelInputGrad grad{d_emb.data(), nullptr};
  model->Backward(in, d_logits.data(), &grad);
  const std::vector<float> param_grads(model->params().grads().begin(),
                                       model->params().grads().end());
  GradCheckOptions options;
  ExpectFiniteDifferencesMatch("emb", loss, emb.data(), d_emb.data(), emb.size(), options);
  for (const ParamInfo& p : model->params().parameters()) {
    ExpectFiniteDifferencesMatch(p.name, loss, model->params().value(p.slot),
                                 param_grads.data() + p.slot.offset, p.slot.size, options);
  }
}

const std::vector<SequenceSpec>& SequenceSpecs() {
  static const std::vector<SequenceSpec> specs = {
      {.field = 1, .target_field = 0, .max_len = kLen1},
      {.field = 2, .target_field = 0, .max_len = kLen2}};
  return specs;
}

ModelInput SequenceData::Input(int batch) {
  ModelInput in{batch, kFields, kDim, emb.data(), nullptr};
  in.sequences = {{1, 0, kLen1, seq1.data(), len1.data()}, {2, 0, kLen2, seq2.data(), len2.data()}};
  return in;
}

std::unique_ptr<CtrModel> MakeSequenceModel(const std::string& text, uint64_t seed,
                                            const std::vector<SequenceSpec>& specs) {
  auto model = CreateModel(Config(text), kFields, kDim, seed, specs);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

void CheckSequenceModelGradients(const std::string& text, bool training,
                                 const std::function<void(CtrModel&, SequenceData*)>& prepare) {
  SCOPED_TRACE(text);
  std::unique_ptr<CtrModel> model = MakeSequenceModel(text);
  ASSERT_NE(model, nullptr);
  RandomizeParameters(&model->params(), 7);
  SequenceData data;
  if (prepare) prepare(*model, &data);
  ModelInput in = data.Input();
  std::vector<float> d_emb(data.emb.size(), std::nanf(""));
  std::vector<float> d_seq1(data.seq1.size(), std::nanf("")),
      d_seq2(data.seq2.size(), std::nanf(""));
  ModelInputGrad grad{d_emb.data(), nullptr};
  grad.d_seq_emb = {d_seq1.data(), d_seq2.data()};
  // The sequence fields' slots of emb are not read, and get zero.
  auto slots_are_zero = [&] {
    for (int b = 0; b < kBatch; ++b) {
      for (int j = 0; j < 2 * kDim; ++j) EXPECT_EQ(d_emb[(b * kFields + 1) * kDim + j], 0.0f);
    }
  };
  ExpectModelGradientsMatch(model.get(), in, training, &grad,
                            {{"emb", data.emb.data(), d_emb.data(), d_emb.size()},
                             {"seq1", data.seq1.data(), d_seq1.data(), d_seq1.size()},
                             {"seq2", data.seq2.data(), d_seq2.data(), d_seq2.size()}},
                            slots_are_zero);
}

}  // namespace ctrps::nn::testing
