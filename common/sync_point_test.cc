// The macros are compiled in here, as in the test builds of a library.
#define CTRPS_SYNC_POINTS
#include "common/sync_point.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

class SyncPointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sp_ = SyncPoint::Get();
    sp_->ClearAll();
    sp_->set_wait_limit(absl::Seconds(10));
  }
  void TearDown() override {
    sp_->DisableProcessing();
    sp_->ClearAll();
  }
  SyncPoint* sp_ = nullptr;
};

TEST_F(SyncPointTest, SuccessorWaitsForItsPredecessor) {
  sp_->LoadDependency({{"Writer:Done", "Reader:Start"}});
  sp_->EnableProcessing();
  std::vector<std::string> order;
  absl::Mutex mu;
  std::thread reader([&] {
    TEST_SYNC_POINT("Reader:Start");
    absl::MutexLock lock(&mu);
    order.push_back("read");
  });
  std::thread writer([&] {
    {
      absl::MutexLock lock(&mu);
      order.push_back("write");
    }
    TEST_SYNC_POINT("Writer:Done");
  });
  reader.join();
  writer.join();
  EXPECT_EQ(order, (std::vector<std::string>{"write", "read"}));
  EXPECT_EQ(sp_->timeouts(), 0);
}

TEST_F(SyncPointTest, CallbackGetsTheArgument) {
  int seen = 0;
  sp_->SetCallBack("Point", [&](void* arg) { seen = *static_cast<int*>(arg); });
  sp_->EnableProcessing();
  int value = 42;
  TEST_SYNC_POINT_CALLBACK("Point", &value);
  EXPECT_EQ(seen, 42);
  EXPECT_TRUE(sp_->Passed("Point"));
}

TEST_F(SyncPointTest, NothingHappensWhileDisabled) {
  sp_->LoadDependency({{"Never", "Point"}});
  int calls = 0;
  sp_->SetCallBack("Point", [&](void*) { ++calls; });
  TEST_SYNC_POINT("Point");
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(sp_->Passed("Point"));
}

TEST_F(SyncPointTest, AMissingPredecessorTimesOutInsteadOfHanging) {
  sp_->set_wait_limit(absl::Milliseconds(20));
  sp_->LoadDependency({{"Never", "Point"}});
  sp_->EnableProcessing();
  TEST_SYNC_POINT("Point");
  EXPECT_EQ(sp_->timeouts(), 1);
  EXPECT_TRUE(sp_->Passed("Point"));
  EXPECT_FALSE(sp_->WaitFor("Never", absl::Milliseconds(1)));
}

}  // namespace
}  // namespace ctrps
