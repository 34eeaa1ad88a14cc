// SelectFields: some fields' slots of the field embeddings, in a given order:
//   out[:, i*dim : (i+1)*dim] = in[:, fields[i]*dim : (fields[i]+1)*dim]
// The gradient goes back to those slots; the other slots get zero. E.g.
// FinalMLP's feature-selection context (the user's and item's own embedding
// tables) apart from the fields its MLP streams read.
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_SELECT_FIELDS_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_SELECT_FIELDS_H_

#include <cstdint>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class SelectFields : public Layer {
 public:
  // `in` is [B, F * dim]; `fields` non-empty, distinct, each in [0, F).
  SelectFields(Graph* graph, Node* in, int64_t dim, std::vector<int> fields);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
  int64_t dim_;
  std::vector<int> fields_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_SELECT_FIELDS_H_
