#include "edge/common/files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace edge {
namespace {

class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ReadFileTest, ReadsWholeFileUpToTheBound) {
  const std::string text(20'000, 'x');
  auto read = ReadFile(Write("f", text), text.size());
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_EQ(*read, text);
}

TEST_F(ReadFileTest, LargerThanTheBoundIsFull) {
  auto read = ReadFile(Write("f", std::string(10, 'x')), 9);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Status::Code::kFull);
  EXPECT_EQ(read.error(), "larger than 9 bytes");
}

TEST_F(ReadFileTest, MissingFileIsNotFound) {
  auto read = ReadFile((dir_ / "absent").string(), kNoFileSizeLimit);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(read.error(), "cannot open: No such file or directory");
}

TEST_F(ReadFileTest, DirectoryIsAReadError) {
  auto read = ReadFile(dir_.string(), kNoFileSizeLimit);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Status::Code::kIOError);
  EXPECT_EQ(read.error(), "cannot read: Is a directory");
}

TEST_F(ReadFileTest, EmptyFileIsEmpty) {
  auto read = ReadFile(Write("empty", ""), 0);
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_EQ(*read, "");
}

}  // namespace
}  // namespace edge
