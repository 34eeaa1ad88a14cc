#include "common/security.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "." + std::to_string(getpid())))
      .string();
}

TEST(SecurityTest, NewSecretsAreRandomAndRoundTrip) {
  auto a = NewJobSecrets();
  auto b = NewJobSecrets();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->member_token.size(), 32u);
  EXPECT_NE(a->member_token, b->member_token);
  EXPECT_NE(a->member_token, a->chief_token);
  EXPECT_EQ(a->has_curve_keys(), CurveAvailable());
  auto parsed = ParseJobSecrets(SerializeJobSecrets(*a));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->member_token, a->member_token);
  EXPECT_EQ(parsed->chief_token, a->chief_token);
  EXPECT_EQ(parsed->client_secret_key, a->client_secret_key);
  EXPECT_EQ(parsed->server_public_key, a->server_public_key);
}

TEST(SecurityTest, KeyFileIsOwnerOnlyAndNotOverwritten) {
  const std::string path = TempPath("ctrps_keys");
  std::filesystem::remove(path);
  auto s = NewJobSecrets();
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WriteKeyFile(path, *s).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(WriteKeyFile(path, *s).code(), absl::StatusCode::kAlreadyExists);
  auto read = ReadKeyFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->chief_token, s->chief_token);
  chmod(path.c_str(), 0644);
  EXPECT_EQ(ReadKeyFile(path).status().code(), absl::StatusCode::kPermissionDenied);
  std::filesystem::remove(path);
}

TEST(SecurityTest, BadKeyTextIsRejected) {
  EXPECT_FALSE(ParseJobSecrets("member_token 00\nchief_token 00\n").ok());
  EXPECT_FALSE(ParseJobSecrets("").ok());
  EXPECT_FALSE(ParseJobSecrets("nonsense 1\n").ok());
}

TEST(SecurityTest, SecretsEqualNeedsBothNonEmptyAndSame) {
  EXPECT_TRUE(SecretsEqual("abc", "abc"));
  EXPECT_FALSE(SecretsEqual("abc", "abd"));
  EXPECT_FALSE(SecretsEqual("abc", "ab"));
  EXPECT_FALSE(SecretsEqual("", ""));
}

}  // namespace
}  // namespace ctrps
