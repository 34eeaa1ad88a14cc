#include "worker/nn/ctr_model.h"

#include <cassert>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status.h"
#include "worker/nn/add.h"
#include "worker/nn/bilinear_fusion.h"
#include "worker/nn/concat.h"
#include "worker/nn/cross_net.h"
#include "worker/nn/cross_net_v2.h"
#include "worker/nn/din_attention.h"
#include "worker/nn/feature_selection.h"
#include "worker/nn/first_order.h"
#include "worker/nn/fm_interaction.h"
#include "worker/nn/graph.h"
#include "worker/nn/linear.h"
#include "worker/nn/mlp_block.h"
#include "worker/nn/replace_fields.h"
#include "worker/nn/sdim_sampling.h"
#include "worker/nn/sequence_pooling.h"

namespace ctrps::nn {
namespace {

constexpr uint64_t kGraphSeedSalt = 0x6772617068ULL;
constexpr uint64_t kSdimSeedSalt = 0x7364696dULL;

class GraphModel final : public CtrModel {
 public:
  GraphModel(int num_fields, int dim, bool needs_linear, uint64_t seed)
      : num_fields_(num_fields),
        dim_(dim),
        arena_(seed),
        graph_(&arena_, Mix64(seed ^ kGraphSeedSalt)),
        dropout_seed_(seed) {
    emb_ = graph_.AddInput(static_cast<int64_t>(num_fields) * dim, /*needs_grad=*/true);
    if (needs_linear) linear_ = graph_.AddInput(num_fields, /*needs_grad=*/true);
  }

  Graph* graph() { return &graph_; }
  Node* emb() const { return emb_; }
  Node* linear() const { return linear_; }
  void set_logits(Node* logits) { logits_ = logits; }

  // A sequence input node [B, max_len * dim] for `spec`; its pooling layer
  // is attached with set_pooling().
  Node* AddSequence(const SequenceSpec& spec) {
    specs_.push_back(spec);
    seq_nodes_.push_back(
        graph_.AddInput(static_cast<int64_t>(spec.max_len) * dim_, /*needs_grad=*/true));
    pools_.push_back(nullptr);
    return seq_nodes_.back();
  }
  void set_pooling(size_t i, SequencePooling* pool) { pools_[i] = pool; }

  bool NeedsLinear() const override { return linear_ != nullptr; }

  void Forward(const ModelInput& in, bool training, float* logits) override {
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
    std::memcpy(logits, logits_->value(), sizeof(float) * in.batch);
  }

  void Backward(const ModelInput& in, const float* d_logits, ModelInputGrad* grad) override {
    graph_.BindInput(emb_, in.emb, grad->d_emb);
    if (linear_ != nullptr) graph_.BindInput(linear_, in.linear, grad->d_linear);
    assert(grad->d_seq_emb.size() == specs_.size());
    for (size_t i = 0; i < specs_.size(); ++i) {
      graph_.BindInput(seq_nodes_[i], in.sequences[i].emb, grad->d_seq_emb[i]);
    }
    graph_.Backward(logits_, d_logits);
  }

  ParameterArena& params() override { return arena_; }
  int64_t FlopsPerSample() const override { return graph_.FlopsPerSample(); }
  void SetDropoutSeed(uint64_t seed) override { dropout_seed_ = seed; }

 private:
  int num_fields_;
  int dim_;
  ParameterArena arena_;
  Graph graph_;
  uint64_t dropout_seed_;
  uint64_t step_ = 0;
  Node* emb_ = nullptr;
  Node* linear_ = nullptr;
  Node* logits_ = nullptr;
  std::vector<SequenceSpec> specs_;
  std::vector<Node*> seq_nodes_;
  std::vector<SequencePooling*> pools_;
};

absl::Status CheckUnits(const google::protobuf::RepeatedField<int32_t>& units, const char* field) {
  for (int i = 0; i < units.size(); ++i) {
    if (units[i] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.", field, "[", i, "] must be > 0, got ", units[i]));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRate(float rate, const char* field) {
  if (!(rate >= 0.0f && rate < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.", field, " must be in [0, 1), got ", rate));
  }
  return absl::OkStatus();
}

std::vector<int> Units(const google::protobuf::RepeatedField<int32_t>& units) {
  return std::vector<int>(units.begin(), units.end());
}

// The deep part shared by DNN, Wide&Deep, DeepFM, DCN and DCNv2.
absl::StatusOr<MlpOptions> DeepOptions(const ModelConfig& config) {
  RETURN_IF_ERROR(CheckUnits(config.hidden_units(), "hidden_units"));
  RETURN_IF_ERROR(CheckRate(config.dropout(), "dropout"));
  MlpOptions mlp;
  ASSIGN_OR_RETURN(mlp.activation, ParseActivation(config.activation()));
  mlp.hidden_units = Units(config.hidden_units());
  mlp.dropout = config.dropout();
  mlp.batch_norm = config.batch_norm();
  mlp.name = "dnn";
  return mlp;
}

absl::Status BuildFinalMlp(const ModelConfig& config, GraphModel* model, int dim) {
  Graph* g = model->graph();
  Node* flat = model->emb();
  RETURN_IF_ERROR(CheckUnits(config.mlp1_hidden_units(), "mlp1_hidden_units"));
  RETURN_IF_ERROR(CheckUnits(config.mlp2_hidden_units(), "mlp2_hidden_units"));
  RETURN_IF_ERROR(CheckUnits(config.fs_hidden_units(), "fs_hidden_units"));
  RETURN_IF_ERROR(CheckRate(config.mlp1_dropout(), "mlp1_dropout"));
  RETURN_IF_ERROR(CheckRate(config.mlp2_dropout(), "mlp2_dropout"));
  ASSIGN_OR_RETURN(Activation activation, ParseActivation(config.activation()));
  const int heads = config.num_heads();
  if (heads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("model.num_heads must be >= 1, got ", heads));
  }
  const auto& units1 = config.mlp1_hidden_units();
  const auto& units2 = config.mlp2_hidden_units();
  const int64_t width1 = units1.empty() ? flat->width() : units1[units1.size() - 1];
  const int64_t width2 = units2.empty() ? flat->width() : units2[units2.size() - 1];
  if (width1 % heads != 0 || width2 % heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.num_heads (", heads, ") must divide the output widths of both MLP streams (", width1,
        ", ", width2, ")"));
  }
  Node* feat1 = flat;
  Node* feat2 = flat;
  if (config.use_feature_selection()) {
    const std::vector<int> fs_units = Units(config.fs_hidden_units());
    feat1 = AddFeatureSelection(g, flat, nullptr, dim, fs_units, "fs1");
    feat2 = AddFeatureSelection(g, flat, nullptr, dim, fs_units, "fs2");
  }
  MlpOptions mlp1;
  mlp1.hidden_units = Units(config.mlp1_hidden_units());
  mlp1.activation = activation;
  mlp1.dropout = config.mlp1_dropout();
  mlp1.batch_norm = config.mlp1_batch_norm();
  mlp1.name = "mlp1";
  MlpOptions mlp2 = mlp1;
  mlp2.hidden_units = Units(config.mlp2_hidden_units());
  mlp2.dropout = config.mlp2_dropout();
  mlp2.batch_norm = config.mlp2_batch_norm();
  mlp2.name = "mlp2";
  Node* x1 = AddMlp(g, feat1, mlp1);
  Node* x2 = AddMlp(g, feat2, mlp2);
  model->set_logits(g->Add<BilinearFusion>(x1, x2, heads, "fusion")->out());
  return absl::OkStatus();
}

bool IsSequenceType(ModelConfig::Type type) {
  return type == ModelConfig::MEANPOOL || type == ModelConfig::DIN || type == ModelConfig::SDIM;
}

absl::Status CheckSequences(const ModelConfig& config, int num_fields,
                            const std::vector<SequenceSpec>& sequences) {
  const std::string type = ModelConfig::Type_Name(config.type());
  if (!IsSequenceType(config.type())) {
    if (sequences.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("model.type ", type, " takes no sequence inputs (got ", sequences.size(),
                     "); the sequence models are MEANPOOL, DIN and SDIM"));
  }
  if (sequences.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.type ", type, " needs at least one sequence input (a SEQUENCE feature)"));
  }
  std::vector<bool> is_sequence(num_fields, false);
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceSpec& s = sequences[i];
    if (s.field < 0 || s.field >= num_fields) {
      return absl::InvalidArgumentError(absl::StrCat("model: sequence ", i, " fills field ",
                                                     s.field, ", outside [0, ", num_fields, ")"));
    }
    if (is_sequence[s.field]) {
      return absl::InvalidArgumentError(absl::StrCat("model: sequence ", i, " fills field ",
                                                     s.field, ", as an earlier one does"));
    }
    is_sequence[s.field] = true;
    if (s.max_len <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model: sequence ", i, " has max_len ", s.max_len, "; it must be > 0"));
    }
  }
  if (config.type() == ModelConfig::MEANPOOL) return absl::OkStatus();
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceSpec& s = sequences[i];
    if (s.target_field < 0 || s.target_field >= num_fields) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.type ", type, ": sequence ", i, " (field ", s.field,
                       ") needs a target field in [0, ", num_fields, "), got ", s.target_field,
                       " (set the SEQUENCE feature's `target`)"));
    }
    if (is_sequence[s.target_field]) {
      return absl::InvalidArgumentError(absl::StrCat("model: sequence ", i, " has target field ",
                                                     s.target_field,
                                                     ", which is itself a sequence field"));
    }
  }
  return absl::OkStatus();
}

// MEANPOOL, DIN, SDIM: each sequence is pooled into its field's slot, then
// the MLP runs over the F fields.
absl::Status BuildSequenceModel(const ModelConfig& config, GraphModel* model, int dim,
                                const std::vector<SequenceSpec>& sequences, uint64_t seed) {
  Graph* g = model->graph();
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepOptions(config));
  mlp.output_dim = 1;
  MlpOptions attention;
  if (config.type() == ModelConfig::DIN) {
    RETURN_IF_ERROR(CheckUnits(config.attention_hidden_units(), "attention_hidden_units"));
    absl::StatusOr<Activation> act = ParseActivation(config.attention_activation());
    if (!act.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.attention_activation: ", act.status().message()));
    }
    attention.activation = *act;
    attention.hidden_units = Units(config.attention_hidden_units());
  }
  const int num_hashes = config.sdim_num_hashes(), hash_bits = config.sdim_hash_bits();
  if (config.type() == ModelConfig::SDIM) {
    if (hash_bits < 1 || hash_bits > 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.sdim_hash_bits must be in [1, 16], got ", hash_bits));
    }
    if (num_hashes <= 0 || num_hashes % hash_bits != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.sdim_num_hashes must be a positive multiple of sdim_hash_bits (",
                       hash_bits, "), got ", num_hashes));
    }
  }
  std::vector<std::pair<int, Node*>> pooled;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceSpec& spec = sequences[i];
    Node* seq = model->AddSequence(spec);
    const int64_t query_offset = static_cast<int64_t>(spec.target_field) * dim;
    SequencePooling* pool = nullptr;
    switch (config.type()) {
      case ModelConfig::DIN:
        attention.name = absl::StrCat("din.", i, ".att");
        pool = g->Add<DinAttention>(seq, spec.max_len, model->emb(), query_offset, attention);
        break;
      case ModelConfig::SDIM:
        pool = g->Add<SdimSampling>(seq, spec.max_len, model->emb(), query_offset, num_hashes,
                                    hash_bits, Mix64(seed ^ kSdimSeedSalt ^ Mix64(i + 1)),
                                    absl::StrCat("sdim.", i));
        break;
      default:
        pool = g->Add<MeanSequencePooling>(seq, spec.max_len, dim);
        break;
    }
    model->set_pooling(i, pool);
    pooled.emplace_back(spec.field, pool->out());
  }
  Node* x = g->Add<ReplaceFields>(model->emb(), dim, std::move(pooled))->out();
  model->set_logits(AddMlp(g, x, mlp));
  return absl::OkStatus();
}

absl::Status Build(const ModelConfig& config, GraphModel* model, int num_fields, int dim) {
  Graph* g = model->graph();
  Node* flat = model->emb();
  switch (config.type()) {
    case ModelConfig::LR:
      model->set_logits(g->Add<FirstOrder>(model->linear())->out());
      return absl::OkStatus();
    case ModelConfig::FM: {
      Node* lr = g->Add<FirstOrder>(model->linear())->out();
      Node* fm = g->Add<FmInteraction>(flat, num_fields, dim)->out();
      model->set_logits(g->Add<Add>(std::vector<Node*>{lr, fm})->out());
      return absl::OkStatus();
    }
    case ModelConfig::DNN: {
      ASSIGN_OR_RETURN(MlpOptions mlp, DeepOptions(config));
      mlp.output_dim = 1;
      model->set_logits(AddMlp(g, flat, mlp));
      return absl::OkStatus();
    }
    case ModelConfig::WIDE_DEEP: {
      ASSIGN_OR_RETURN(MlpOptions mlp, DeepOptions(config));
      mlp.output_dim = 1;
      Node* wide = g->Add<FirstOrder>(model->linear(), /*use_bias=*/false)->out();
      Node* deep = AddMlp(g, flat, mlp);
      model->set_logits(g->Add<Add>(std::vector<Node*>{wide, deep})->out());
      return absl::OkStatus();
    }
    case ModelConfig::DEEPFM: {
      ASSIGN_OR_RETURN(MlpOptions mlp, DeepOptions(config));
      mlp.output_dim = 1;
      Node* lr = g->Add<FirstOrder>(model->linear())->out();
      Node* fm = g->Add<FmInteraction>(flat, num_fields, dim)->out();
      Node* deep = AddMlp(g, flat, mlp);
      model->set_logits(g->Add<Add>(std::vector<Node*>{lr, fm, deep})->out());
      return absl::OkStatus();
    }
    case ModelConfig::DCN:
    case ModelConfig::DCNV2: {
      ASSIGN_OR_RETURN(MlpOptions mlp, DeepOptions(config));
      if (config.num_cross_layers() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.num_cross_layers must be >= 0, got ", config.num_cross_layers()));
      }
      if (config.low_rank() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.low_rank must be >= 0, got ", config.low_rank()));
      }
      Node* cross;
      if (config.type() == ModelConfig::DCN) {
        cross = g->Add<CrossNet>(flat, config.num_cross_layers(), "crossnet")->out();
      } else {
        cross = g->Add<CrossNetV2>(flat, config.num_cross_layers(), config.low_rank(), "crossnet")
                    ->out();
      }
      Node* final_in = cross;
      if (!mlp.hidden_units.empty()) {
        if (config.type() == ModelConfig::DCNV2 && config.stacked()) {
          final_in = AddMlp(g, cross, mlp);
        } else {
          Node* deep = AddMlp(g, flat, mlp);
          final_in = g->Add<Concat>(std::vector<Node*>{cross, deep})->out();
        }
      }
      model->set_logits(g->Add<Linear>(final_in, 1, true, "fc")->out());
      return absl::OkStatus();
    }
    case ModelConfig::FINALMLP:
      return BuildFinalMlp(config, model, dim);
    case ModelConfig::MEANPOOL:
    case ModelConfig::DIN:
    case ModelConfig::SDIM:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "model.type ", ModelConfig::Type_Name(config.type()), " is not known to CreateModel"));
}

bool TypeNeedsLinear(ModelConfig::Type type) {
  return type == ModelConfig::LR || type == ModelConfig::FM || type == ModelConfig::WIDE_DEEP ||
         type == ModelConfig::DEEPFM;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed) {
  return CreateModel(config, num_fields, dim, seed, {});
}

absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed,
                                                      const std::vector<SequenceSpec>& sequences) {
  if (num_fields <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: the number of fields must be > 0, got ", num_fields));
  }
  if (dim <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: the embedding dim must be > 0, got ", dim));
  }
  RETURN_IF_ERROR(CheckSequences(config, num_fields, sequences));
  auto model = std::make_unique<GraphModel>(num_fields, dim, TypeNeedsLinear(config.type()), seed);
  if (IsSequenceType(config.type())) {
    RETURN_IF_ERROR(BuildSequenceModel(config, model.get(), dim, sequences, seed));
  } else {
    RETURN_IF_ERROR(Build(config, model.get(), num_fields, dim));
  }
  return std::unique_ptr<CtrModel>(std::move(model));
}

}  // namespace ctrps::nn
