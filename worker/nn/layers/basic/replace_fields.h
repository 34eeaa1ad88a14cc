// ReplaceFields: the field embeddings with some fields' slots replaced by
// other nodes, e.g. a sequence field's slot by its pooled history:
//   out = in, except out[:, f*dim : (f+1)*dim] = replacement_f
// The gradient of a replaced slot goes to its replacement; `in` gets zero
// there (the slot's input value is never read).
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_REPLACE_FIELDS_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_REPLACE_FIELDS_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class ReplaceFields : public Layer {
 public:
  // `in` is [B, F * dim]; each replacement is (field in [0, F), a per-sample
  // node of width dim), fields distinct.
  ReplaceFields(Graph* graph, Node* in, int64_t dim,
                std::vector<std::pair<int, Node*>> replacements);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
  int64_t dim_;
  std::vector<std::pair<int, Node*>> replacements_;
  std::vector<bool> replaced_;  // per field
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_REPLACE_FIELDS_H_
