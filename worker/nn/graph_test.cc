#include "worker/nn/graph.h"

#include <string>
#include <vector>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"
#include "worker/nn/layers/activation/relu.h"
#include "worker/nn/layers/basic/linear.h"

namespace ctrps::nn {
namespace {

// Doubles its input but claims a gradient of 3.
class WrongGradient : public Layer {
 public:
  WrongGradient(Graph* graph, Node* in) : in_(in), out_(graph->NewNode(in->width(), true)) {}
  Node* out() const { return out_; }
  void Forward(const ForwardContext&) override {
    for (int64_t i = 0; i < in_->size(); ++i) out_->mutable_value()[i] = 2 * in_->value()[i];
  }
  void Backward() override {
    StoreGrad(in_->BeginGradWrite(), in_->grad(), in_->size(),
              [&](int64_t i) { return 3 * out_->grad()[i]; });
  }

 private:
  Node* in_;
  Node* out_;
};

TEST(GraphTest, GradientCheckCatchesAWrongBackward) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(2, true);
  WrongGradient* wrong = graph.Add<WrongGradient>(x);
  Node* in[] = {x};
  Node* out[] = {wrong->out()};
  testing::TestPartResultArray failures;
  {
    testing::ScopedFakeTestPartResultReporter reporter(
        testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4, 1)}, out, 2);
  }
  ASSERT_GT(failures.size(), 0);
  EXPECT_NE(std::string(failures.GetTestPartResult(0).message()).find("analytic"),
            std::string::npos);
}

TEST(GraphTest, GradientsOfANodeWithSeveralConsumersAreSummed) {
  // x feeds two Linears and a ReLU; all three reach the outputs.
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, true);
  Linear* a = graph.Add<Linear>(x, 2);
  Linear* b = graph.Add<Linear>(x, 2);
  Relu* r = graph.Add<Relu>(x);
  Node* in[] = {x};
  Node* out[] = {a->out(), b->out(), r->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(6, 1)}, out, 2);
}

TEST(GraphTest, UnusedInputGetsZeroGradient) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(2, true);
  Node* unused = graph.AddInput(2, true);
  Relu* r = graph.Add<Relu>(x);
  std::vector<float> xv = {1, 2}, uv = {3, 4}, dx(2), du(2, 7.0f);
  graph.BindInput(x, xv.data(), dx.data());
  graph.BindInput(unused, uv.data(), du.data());
  graph.Forward(1, {});
  const float seed[] = {1, 1};
  graph.Backward(r->out(), seed);
  EXPECT_EQ(du, (std::vector<float>{0, 0}));
  EXPECT_EQ(dx, (std::vector<float>{1, 1}));
}

TEST(GraphTest, SteadyBatchReusesBuffers) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  Linear* fc = graph.Add<Linear>(x, 3);
  std::vector<float> xv(8 * 4, 1.0f), dx(8 * 4);
  std::vector<float> seed(8 * 3, 1.0f);
  graph.BindInput(x, xv.data(), dx.data());
  graph.Forward(8, {});
  graph.Backward(fc->out(), seed.data());
  const float* value = fc->out()->value();
  const float* grad = fc->out()->grad();
  graph.Forward(8, {});
  graph.Backward(fc->out(), seed.data());
  EXPECT_EQ(fc->out()->value(), value);
  EXPECT_EQ(fc->out()->grad(), grad);
  EXPECT_EQ(graph.FlopsPerSample(), 2 * 4 * 3);
}

}  // namespace
}  // namespace ctrps::nn
