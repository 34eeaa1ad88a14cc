#include "ps/kv_store.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace ctrps {
absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(std::string(what), ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  // RocksDB reports a full quota, an oversized file or a refused permission
  // as a plain IOError carrying strerror's text: mapped as the errno would be.
  if (s.IsIOError()) {
    for (int err : {ENOSPC, EDQUOT, EFBIG, EACCES}) {
      if (msg.find(std::strerror(err)) != std::string::npos)
        return absl::Status(ErrnoCode(err), msg);
    }
  }
  return absl::UnavailableError(msg);
}

namespace {

class RocksDbStore final : public KvStore {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, std::string dir)
      : db_(std::move(db)), dir_(std::move(dir)) {}

  absl::Status Write(const std::vector<Op>& ops) override {
    rocksdb::WriteBatch batch;
    for (const Op& op : ops) {
      rocksdb::Slice k(op.key.data(), op.key.size());
      if (op.is_delete) {
        batch.Delete(k);
      } else {
        batch.Put(k, rocksdb::Slice(op.value.data(), op.value.size()));
      }
    }
    rocksdb::WriteOptions options;
    options.disableWAL = true;
    return FromRocks(db_->Write(options, &batch), absl::StrCat("rocksdb write in ", dir_));
  }

  absl::Status MultiGet(const std::vector<std::string_view>& keys, std::vector<std::string>* values,
                        std::vector<bool>* found) override {
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (std::string_view k : keys) slices.emplace_back(k.data(), k.size());
    std::vector<rocksdb::PinnableSlice> out(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), keys.size(), slices.data(),
                  out.data(), statuses.data(), /*sorted_input=*/false);
    if (values->size() < keys.size()) values->resize(keys.size());  // grow only: reuse buffers
    found->assign(keys.size(), false);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].ok()) {
        (*values)[i].assign(out[i].data(), out[i].size());
        (*found)[i] = true;
      } else if (!statuses[i].IsNotFound()) {
        return FromRocks(statuses[i], absl::StrCat("rocksdb read in ", dir_));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Checkpoint(const std::string& dir) override {
    rocksdb::Checkpoint* raw = nullptr;
    RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "rocksdb checkpoint"));
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    // log_size_for_flush 0: flush the memtable first (there is no WAL).
    return FromRocks(cp->CreateCheckpoint(dir, 0),
                     absl::StrCat("rocksdb checkpoint of ", dir_, " into ", dir));
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
};

class MemoryKvStore final : public KvStore {
 public:
  absl::Status Write(const std::vector<Op>& ops) override {
    absl::MutexLock lock(&mu_);
    for (const Op& op : ops) {
      if (op.is_delete) {
        data_.erase(std::string(op.key));
      } else {
        data_[std::string(op.key)] = std::string(op.value);
      }
    }
    return absl::OkStatus();
  }
  absl::Status MultiGet(const std::vector<std::string_view>& keys, std::vector<std::string>* values,
                        std::vector<bool>* found) override {
    absl::MutexLock lock(&mu_);
    if (values->size() < keys.size()) values->resize(keys.size());  // grow only: reuse buffers
    found->assign(keys.size(), false);
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = data_.find(std::string(keys[i]));
      if (it != data_.end()) {
        (*values)[i] = it->second;
        (*found)[i] = true;
      }
    }
    return absl::OkStatus();
  }
  absl::Status Checkpoint(const std::string& dir) override {
    return absl::UnimplementedError("the in-memory store has no checkpoints");
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksDbStore(const std::string& dir,
                                                          size_t write_buffer_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoError(dir, "cannot create", ec.value());
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kNoCompression;  // rows are random floats
  options.write_buffer_size = write_buffer_bytes;
  options.max_background_jobs = 2;
  // The store is read only for rows a checkpoint load put there, almost all
  // in SST files: a whole-key Bloom filter over the memtable answers "not
  // here" without a skiplist search. (Its memtable is the default skiplist:
  // checkpoints write in key order, and a flush needs sorted entries.)
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.1;
  // Those rows are read through a mapping of the SST files: no pread copy
  // per block. The mapped pages are the OS page cache, not the server's
  // memory budget, exactly as pread's pages are.
  options.allow_mmap_reads = true;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Small blocks: a point read (a loaded row's first miss) copies and
  // checksums one 4 KB block instead of 16 KB.
  table.block_size = 4 << 10;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open rocksdb at ", dir));
  return std::unique_ptr<KvStore>(new RocksDbStore(std::unique_ptr<rocksdb::DB>(raw), dir));
}

std::unique_ptr<KvStore> NewMemoryKvStore() { return std::make_unique<MemoryKvStore>(); }

absl::Status ScanRocksDb(
    const std::string& dir,
    const std::function<absl::Status(std::string_view, std::string_view)>& fn) {
  if (!std::filesystem::exists(dir + "/CURRENT")) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a RocksDB directory (no CURRENT file)"));
  }
  rocksdb::Options options;
  options.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, &raw);
  if (!s.ok()) return absl::DataLossError(absl::StrCat(dir, ": cannot open: ", s.ToString()));
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RETURN_IF_ERROR(fn(std::string_view(it->key().data(), it->key().size()),
                       std::string_view(it->value().data(), it->value().size())));
  }
  if (!it->status().ok())
    return absl::DataLossError(absl::StrCat(dir, ": ", it->status().ToString()));
  return absl::OkStatus();
}

}  // namespace ctrps
