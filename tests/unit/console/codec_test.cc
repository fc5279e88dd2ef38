#include "edge/console/codec.h"

#include <gtest/gtest.h>

#include <string>

namespace edge::console {
namespace {

constexpr size_t kCap = 8 * 1024 * 1024;

TEST(Gunzip, RoundTripsData) {
  std::string data;
  for (int i = 0; i < 20000; ++i) data += "reading " + std::to_string(i) + "\n";
  const Gunzipped out = Gunzip(Gzip(data), kCap);
  ASSERT_EQ(out.code, GunzipCode::kOk) << out.error;
  EXPECT_EQ(out.data, data);
}

TEST(Gunzip, RoundTripsEmptyInput) {
  const Gunzipped out = Gunzip(Gzip(""), kCap);
  ASSERT_EQ(out.code, GunzipCode::kOk) << out.error;
  EXPECT_TRUE(out.data.empty());
}

TEST(Gunzip, StopsABombAtTheCap) {
  const std::string bomb = Gzip(std::string(kCap + 1, '\0'));
  EXPECT_LT(bomb.size(), 64u * 1024u);
  const Gunzipped out = Gunzip(bomb, kCap);
  EXPECT_EQ(out.code, GunzipCode::kTooLarge);
  EXPECT_TRUE(out.data.empty());
}

TEST(Gunzip, AcceptsOutputExactlyAtTheCap) {
  const Gunzipped out = Gunzip(Gzip(std::string(1000, 'x')), 1000);
  ASSERT_EQ(out.code, GunzipCode::kOk) << out.error;
  EXPECT_EQ(out.data.size(), 1000u);
}

TEST(Gunzip, RejectsDataThatIsNotGzip) {
  EXPECT_EQ(Gunzip("{\"node\":\"node-1\"}", kCap).code, GunzipCode::kCorrupt);
  EXPECT_EQ(Gunzip("", kCap).code, GunzipCode::kCorrupt);
}

TEST(Gunzip, RejectsTruncatedStream) {
  const std::string gz = Gzip(std::string(5000, 'a') + "tail");
  EXPECT_EQ(Gunzip(gz.substr(0, gz.size() - 6), kCap).code, GunzipCode::kCorrupt);
  EXPECT_EQ(Gunzip(gz.substr(0, 5), kCap).code, GunzipCode::kCorrupt);
}

TEST(Gunzip, RejectsBadChecksum) {
  std::string gz = Gzip("hello world");
  gz[gz.size() - 5] = static_cast<char>(gz[gz.size() - 5] ^ 0x01);  // CRC-32 trailer
  EXPECT_EQ(Gunzip(gz, kCap).code, GunzipCode::kCorrupt);
}

TEST(Gunzip, RejectsTrailingGarbage) {
  EXPECT_EQ(Gunzip(Gzip("hello") + "junk", kCap).code, GunzipCode::kCorrupt);
}

}  // namespace
}  // namespace edge::console
