#include "worker/nn/layers/blocks/mlp_block.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(MlpBlockTest, ParseActivationIsCaseInsensitive) {
  EXPECT_EQ(*ParseActivation("ReLU"), Activation::kRelu);
  EXPECT_EQ(*ParseActivation("prelu"), Activation::kPrelu);
  EXPECT_EQ(*ParseActivation("Dice"), Activation::kDice);
  EXPECT_EQ(*ParseActivation("sigmoid"), Activation::kSigmoid);
  EXPECT_EQ(ParseActivation("gelu").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MlpBlockTest, LayersFollowFuxiCtrOrder) {
  // Linear, BatchNorm, activation, Dropout per hidden layer, then the output.
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  MlpOptions options;
  options.hidden_units = {4, 3};
  options.activation = Activation::kPrelu;
  options.batch_norm = true;
  options.dropout = 0.2f;
  options.output_dim = 1;
  Node* out = AddMlp(&graph, x, options);
  EXPECT_EQ(out->width(), 1);
  EXPECT_EQ(graph.num_layers(), 2 * 4 + 1);
  std::vector<std::string> names;
  for (const ParamInfo& p : arena.parameters()) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"mlp.0.linear.weight", "mlp.0.linear.bias", "mlp.0.bn.weight",
                                      "mlp.0.bn.bias", "mlp.0.act.weight", "mlp.1.linear.weight",
                                      "mlp.1.linear.bias", "mlp.1.bn.weight", "mlp.1.bn.bias",
                                      "mlp.1.act.weight", "mlp.out.weight", "mlp.out.bias"}));
}

TEST(MlpBlockTest, WithoutLayersReturnsTheInput) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  EXPECT_EQ(AddMlp(&graph, x, MlpOptions{}), x);
}

TEST(MlpBlockTest, BackwardMatchesFiniteDifferences) {
  for (Activation act :
       {Activation::kRelu, Activation::kPrelu, Activation::kDice, Activation::kSigmoid}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(5, true);
    MlpOptions options;
    options.hidden_units = {4, 3};
    options.activation = act;
    options.batch_norm = true;
    options.dropout = 0.3f;
    options.output_dim = 2;
    Node* out = AddMlp(&graph, x, options);
    RandomizeParameters(&arena, 3);
    Node* in[] = {x};
    Node* outs[] = {out};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(6 * 5, 1)}, outs, 6,
                         {.training = true, .step = 11});
  }
}

}  // namespace
}  // namespace ctrps::nn
