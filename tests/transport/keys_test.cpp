#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "transport/keys.h"

namespace zen::transport {
namespace {
namespace fs = std::filesystem;

class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("zen_keys_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(KeysTest, CreatesKeyFileWith0600AndReloadsIt) {
  fs::path p = dir_ / "node.key";
  bool created = false;
  KeyPair a = load_or_create_key_file(p, &created);
  EXPECT_TRUE(created);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  KeyPair b = load_or_create_key_file(p, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(a.public_key, b.public_key);
  EXPECT_EQ(a.secret_key.bytes, b.secret_key.bytes);
  EXPECT_EQ(keypair_from_secret(a.secret_key).public_key, a.public_key);
  EXPECT_THROW(write_key_file(p, a), std::runtime_error);  // never overwrites
}

TEST_F(KeysTest, RefusesGroupOrWorldReadableKeyFile) {
  fs::path p = dir_ / "node.key";
  write_key_file(p, generate_keypair());
  for (mode_t m : {0640, 0604, 0660}) {
    ASSERT_EQ(::chmod(p.c_str(), m), 0);
    try {
      load_key_file(p);
      FAIL() << "mode " << std::oct << m << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
  }
  ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
  EXPECT_NO_THROW(load_key_file(p));
}

TEST_F(KeysTest, RefusesMalformedOrMismatchedKeyFile) {
  fs::create_directories(dir_);
  auto write = [&](const std::string& name, const std::string& content) {
    fs::path p = dir_ / name;
    std::ofstream(p) << content;
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
    return p;
  };
  KeyPair a = generate_keypair(), b = generate_keypair();
  EXPECT_THROW(load_key_file(write("junk", "hello world\n")), std::runtime_error);
  EXPECT_THROW(load_key_file(write("short", "zen-node-key-v1\nsecret AAAA\npublic AAAA\n")), std::runtime_error);
  std::string mismatched = "zen-node-key-v1\nsecret " + to_base64(a.secret_key.bytes) + "\npublic " +
                           to_base64(b.public_key) + "\n";
  try {
    load_key_file(write("mismatch", mismatched));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_key_file(dir_ / "missing"), std::runtime_error);
}

TEST_F(KeysTest, ClusterSecretFormatsAndParses) {
  ClusterSecret s = generate_cluster_secret();
  std::string text = format_cluster_secret(s);
  EXPECT_EQ(text.size(), 44u);
  EXPECT_EQ(parse_cluster_secret("  " + text + "\n").key.bytes, s.key.bytes);
  EXPECT_NE(generate_cluster_secret().key.bytes, s.key.bytes);
  EXPECT_THROW(parse_cluster_secret("not base64!"), std::invalid_argument);
  EXPECT_THROW(parse_cluster_secret(to_base64(std::vector<uint8_t>(31, 1))), std::invalid_argument);
  EXPECT_THROW(parse_cluster_secret(""), std::invalid_argument);

  fs::path p = dir_ / "cluster.secret";
  write_cluster_secret_file(p, s);
  EXPECT_EQ(load_cluster_secret_file(p).key.bytes, s.key.bytes);
  ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
  EXPECT_THROW(load_cluster_secret_file(p), std::runtime_error);
}

TEST(Keys, PublicKeyText) {
  KeyPair a = generate_keypair();
  EXPECT_EQ(parse_public_key(format_public_key(a.public_key)), a.public_key);
  EXPECT_THROW(parse_public_key("AAAA"), std::invalid_argument);
  EXPECT_EQ(from_base64("aGVsbG8="), (std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'}));
  EXPECT_THROW(from_base64("aGVsbG8"), std::invalid_argument);
}

}  // namespace
}  // namespace zen::transport
