#include "common/config.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/field_ranges.h"
#include "common/status.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace ctrps {
namespace {

namespace pb = google::protobuf;

class ErrorCollector : public pb::io::ErrorCollector {
 public:
  explicit ErrorCollector(std::string origin) : origin_(std::move(origin)) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty())
      first_ = absl::StrFormat("%s:%d:%d: %s", origin_, line + 1, column + 1, message);
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string origin_;
  std::string first_;
};

// Locates fields of the parsed file so semantic errors can name a line.
class Locator {
 public:
  Locator(std::string origin, const pb::TextFormat::ParseInfoTree* tree)
      : origin_(std::move(origin)), tree_(tree) {}

  // "file:line:col" of `field` (index for repeated) under the nested path
  // given as (field name, index) pairs from the root message.
  std::string Where(const pb::Descriptor* root,
                    const std::vector<std::pair<std::string, int>>& path) const {
    const pb::TextFormat::ParseInfoTree* tree = tree_;
    const pb::Descriptor* desc = root;
    pb::TextFormat::ParseLocation loc(-1, -1);
    for (size_t i = 0; i < path.size() && tree != nullptr && desc != nullptr; ++i) {
      const pb::FieldDescriptor* f = desc->FindFieldByName(path[i].first);
      if (f == nullptr) break;
      int index = f->is_repeated() ? path[i].second : -1;
      pb::TextFormat::ParseLocation here = tree->GetLocation(f, index);
      if (here.line >= 0) loc = here;
      if (f->type() != pb::FieldDescriptor::TYPE_MESSAGE) break;
      tree = tree->GetTreeForNested(f, index);
      desc = f->message_type();
    }
    if (loc.line < 0) return origin_;
    return absl::StrFormat("%s:%d:%d", origin_, loc.line + 1, loc.column + 1);
  }

 private:
  std::string origin_;
  const pb::TextFormat::ParseInfoTree* tree_;
};

absl::Status ApplyOverride(const std::string& origin, const std::string& spec,
                           ExperimentConfig* config) {
  std::vector<std::string> kv = absl::StrSplit(spec, absl::MaxSplits('=', 1));
  if (kv.size() != 2 || kv[0].empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--set ", spec, ": expected field.path=value"));
  }
  std::vector<std::string> path = absl::StrSplit(kv[0], '.');
  pb::Message* msg = config;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const pb::FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName(path[i]);
    if (f == nullptr || f->type() != pb::FieldDescriptor::TYPE_MESSAGE || f->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat("--set ", spec, ": \"", path[i],
                                                     "\" is not a section of ",
                                                     msg->GetDescriptor()->name()));
    }
    msg = msg->GetReflection()->MutableMessage(msg, f);
  }
  const pb::FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName(path.back());
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", spec, ": ", msg->GetDescriptor()->name(), " has no field \"", path.back(), "\""));
  }
  std::string value = kv[1];
  if (f->type() == pb::FieldDescriptor::TYPE_STRING && !absl::StartsWith(value, "\"") &&
      !absl::StartsWith(value, "[")) {
    value = absl::StrCat("\"", absl::CEscape(value), "\"");
  }
  msg->GetReflection()->ClearField(msg, f);
  std::string text = absl::StrCat(f->name(), ": ", value);
  ErrorCollector errors(absl::StrCat("--set ", spec));
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.MergeFromString(text, msg)) {
    return absl::InvalidArgumentError(
        errors.first().empty() ? absl::StrCat("--set ", spec, ": bad value") : errors.first());
  }
  (void)origin;
  return absl::OkStatus();
}

absl::Status Validate(const Locator& at, ExperimentConfig* config) {
  const pb::Descriptor* root = ExperimentConfig::descriptor();
  auto bad = [&](const std::vector<std::pair<std::string, int>>& path, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(at.Where(root, path), ": ", what));
  };
  const ClusterConfig& cluster = config->cluster();
  if (cluster.num_servers() < 1)
    return bad({{"cluster", -1}, {"num_servers", -1}}, "cluster.num_servers must be >= 1");
  if (cluster.num_workers() < 1)
    return bad({{"cluster", -1}, {"num_workers", -1}}, "cluster.num_workers must be >= 1");
  if (cluster.server_endpoint_size() > 0 &&
      cluster.server_endpoint_size() != cluster.num_servers()) {
    return bad({{"cluster", -1}, {"server_endpoint", 0}},
               absl::StrFormat("cluster: %d server_endpoint entries for num_servers %d",
                               cluster.server_endpoint_size(), cluster.num_servers()));
  }
  if (cluster.server_threads() < 1)
    return bad({{"cluster", -1}, {"server_threads", -1}}, "cluster.server_threads must be >= 1");
  if (cluster.memory_limit_mb() < 0)
    return bad({{"cluster", -1}, {"memory_limit_mb", -1}}, "cluster.memory_limit_mb must be >= 0");
  if (cluster.spill_segment_mb() < 1 || cluster.spill_segment_mb() > 4096) {
    return bad({{"cluster", -1}, {"spill_segment_mb", -1}},
               "cluster.spill_segment_mb must be from 1 to 4096");
  }
  if (cluster.min_free_disk_mb() < 0) {
    return bad({{"cluster", -1}, {"min_free_disk_mb", -1}},
               "cluster.min_free_disk_mb must be >= 0");
  }
  if (cluster.shared_memory_mb() < 0) {
    return bad({{"cluster", -1}, {"shared_memory_mb", -1}},
               "cluster.shared_memory_mb must be >= 0");
  }

  std::set<std::string> tables;
  for (const TableConfig& t : config->table()) tables.insert(t.name());
  if (config->has_table_defaults() && config->table_defaults().dim() <= 0) {
    return bad({{"table_defaults", -1}, {"dim", -1}},
               absl::StrFormat("table_defaults has dim %d; it must be > 0",
                               config->table_defaults().dim()));
  }
  DataConfig* data = config->mutable_data();
  std::set<std::string> features;
  for (int i = 0; i < data->feature_size(); ++i) {
    FeatureConfig* f = data->mutable_feature(i);
    std::vector<std::pair<std::string, int>> path = {{"data", -1}, {"feature", i}, {"name", -1}};
    if (f->name().empty()) return bad(path, absl::StrCat("feature #", i + 1, " has no name"));
    if (!features.insert(f->name()).second)
      return bad(path, absl::StrCat("feature \"", f->name(), "\" is defined twice"));
    const bool explicit_table = f->has_table();
    if (!explicit_table) f->set_table(f->name());
    if (!f->has_column() && f->column_index() < 0) f->set_column(f->name());
    if (!f->has_hash_as()) f->set_hash_as(f->table());
    if (tables.count(f->table()) == 0 && config->has_table_defaults()) {
      TableConfig* t = config->add_table();
      *t = config->table_defaults();
      t->set_name(f->table());
      tables.insert(f->table());
    }
    if (tables.count(f->table()) == 0) {
      path.back().first = explicit_table ? "table" : "name";
      return bad(path, absl::StrFormat("feature \"%s\" names table \"%s\", which is not defined",
                                       f->name(), f->table()));
    }
    if ((f->kind() == FeatureConfig::SEQUENCE || f->kind() == FeatureConfig::MULTI_VALUED) &&
        f->max_len() <= 0) {
      path.back().first = "max_len";
      return bad(path, absl::StrFormat("feature \"%s\": max_len must be > 0", f->name()));
    }
  }
  for (int i = 0; i < data->feature_size(); ++i) {
    const FeatureConfig& f = data->feature(i);
    if (!f.has_target()) continue;
    const std::vector<std::pair<std::string, int>> path = {
        {"data", -1}, {"feature", i}, {"target", -1}};
    if (f.kind() != FeatureConfig::SEQUENCE) {
      return bad(path,
                 absl::StrFormat("feature \"%s\": target is only for SEQUENCE features", f.name()));
    }
    const FeatureConfig* target = nullptr;
    for (const FeatureConfig& g : data->feature()) {
      if (g.name() == f.target()) target = &g;
    }
    if (target == nullptr) {
      return bad(path, absl::StrFormat("feature \"%s\": target \"%s\" is not a feature", f.name(),
                                       f.target()));
    }
    if (target->kind() == FeatureConfig::SEQUENCE) {
      return bad(path, absl::StrFormat("feature \"%s\": target \"%s\" is itself a SEQUENCE feature",
                                       f.name(), f.target()));
    }
  }
  std::set<std::string> seen_tables;
  for (int i = 0; i < config->table_size(); ++i) {
    TableConfig* t = config->mutable_table(i);
    auto where = [&](const char* field) {
      return std::vector<std::pair<std::string, int>>{{"table", i}, {field, -1}};
    };
    if (t->name().empty())
      return bad(where("name"), absl::StrCat("table #", i + 1, " has no name"));
    if (!seen_tables.insert(t->name()).second)
      return bad(where("name"), absl::StrCat("table \"", t->name(), "\" is defined twice"));
    if (t->dim() <= 0)
      return bad(where("dim"),
                 absl::StrFormat("table \"%s\" has dim %d; it must be > 0", t->name(), t->dim()));
    if (t->dim() > 4096)
      return bad(where("dim"), absl::StrFormat("table \"%s\" has dim %d; the limit is 4096",
                                               t->name(), t->dim()));
    const SparseOptimizerConfig& o = t->optimizer();
    std::vector<std::pair<std::string, int>> opt_path = {
        {"table", i}, {"optimizer", -1}, {"learning_rate", -1}};
    if (o.learning_rate() < 0)
      return bad(opt_path, absl::StrFormat("table \"%s\": negative learning_rate %g", t->name(),
                                           o.learning_rate()));
    opt_path.back().first = "l2";
    if (o.l2() < 0)
      return bad(opt_path, absl::StrFormat("table \"%s\": negative l2 %g", t->name(), o.l2()));
    if (t->init().scale() < 0)
      return bad(where("init"), absl::StrFormat("table \"%s\": negative init scale", t->name()));
    if (!(t->admit_probability() > 0 && t->admit_probability() <= 1)) {
      return bad(where("admit_probability"),
                 absl::StrFormat("table \"%s\": admit_probability must be in (0, 1], got %g",
                                 t->name(), t->admit_probability()));
    }
  }

  if (data->max_bad_line_rate() < 0 || data->max_bad_line_rate() > 1) {
    return bad({{"data", -1}, {"max_bad_line_rate", -1}},
               "data.max_bad_line_rate must be in [0, 1]");
  }

  const TrainConfig& train = config->train();
  if (train.batch_size() <= 0)
    return bad({{"train", -1}, {"batch_size", -1}},
               absl::StrFormat("train.batch_size must be > 0, got %d", train.batch_size()));
  if (train.epochs() <= 0) return bad({{"train", -1}, {"epochs", -1}}, "train.epochs must be > 0");
  if (train.dense_optimizer().learning_rate() < 0) {
    return bad({{"train", -1}, {"dense_optimizer", -1}, {"learning_rate", -1}},
               absl::StrFormat("negative dense learning_rate %g",
                               train.dense_optimizer().learning_rate()));
  }
  if (train.prefetch() < 0)
    return bad({{"train", -1}, {"prefetch", -1}}, "train.prefetch must be >= 0");
  if (std::optional<FieldRangeViolation> v = FindFieldRangeViolation(*config, ""); v.has_value()) {
    return bad(v->path, v->message);
  }
  if (config->checkpoint().keep() < 1)
    return bad({{"checkpoint", -1}, {"keep", -1}}, "checkpoint.keep must be >= 1");
  return absl::OkStatus();
}

std::string BaseName(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  return std::string(absl::StripSuffix(base, ".pbtxt"));
}

}  // namespace

absl::StatusOr<ExperimentConfig> ParseExperimentConfig(const std::string& text,
                                                       const std::string& origin,
                                                       const std::vector<std::string>& overrides) {
  ExperimentConfig config;
  ErrorCollector errors(origin);
  pb::TextFormat::ParseInfoTree tree;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(errors.first().empty() ? absl::StrCat(origin, ": parse error")
                                                             : errors.first());
  }
  for (const std::string& o : overrides) RETURN_IF_ERROR(ApplyOverride(origin, o, &config));
  if (!config.has_name()) config.set_name(BaseName(origin));
  RETURN_IF_ERROR(Validate(Locator(origin, &tree), &config));
  return config;
}

absl::StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path,
                                                      const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open experiment file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseExperimentConfig(buffer.str(), path, overrides);
}

const TableConfig* FindTable(const ExperimentConfig& config, const std::string& name) {
  for (const TableConfig& t : config.table()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

std::string ConfigToText(const ExperimentConfig& config) {
  std::string out;
  pb::TextFormat::PrintToString(config, &out);
  return out;
}

TrainConfig::SparseSync EffectiveSparseSync(const TrainConfig& train) {
  if (train.sparse_sync() == TrainConfig::BOUNDED && train.max_staleness() == 0)
    return TrainConfig::SYNC;
  return train.sparse_sync();
}

int64_t SyncTimeoutMs(const ExperimentConfig& config) {
  if (config.train().sync_timeout_ms() > 0) return config.train().sync_timeout_ms();
  return std::max<int64_t>(1, int64_t{config.cluster().request_timeout_ms()} * 3 / 4);
}

}  // namespace ctrps
