#include "edge/cloudsync/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>

namespace edge::cloudsync {
namespace {

// Independent decoder straight on zlib, so the round trip does not only test itself.
std::string ZlibGunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[4096];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

TEST(Gzip, CompressedOutputIsGzipThatZlibDecodes) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += R"({"sensor":"plant/boiler1/temp","value":97.5},)";
  auto gz = GzipCompress(text);
  ASSERT_TRUE(gz.ok()) << gz.error();
  ASSERT_GE(gz->size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  EXPECT_LT(gz->size(), text.size() / 10);
  EXPECT_EQ(ZlibGunzip(*gz), text);
}

TEST(Gzip, RoundTripsEmptyBinaryAndLargeInput) {
  for (const std::string& input :
       {std::string(), std::string("x"), RandomBytes(300'000, 1), std::string(3 << 20, 'a')}) {
    auto gz = GzipCompress(input, 1);
    ASSERT_TRUE(gz.ok());
    auto back = GzipDecompress(*gz, input.size());
    ASSERT_TRUE(back.ok()) << back.error();
    EXPECT_EQ(*back, input);
    EXPECT_EQ(ZlibGunzip(*gz), input);
  }
}

TEST(Gzip, RejectsBadLevel) {
  EXPECT_FALSE(GzipCompress("abc", 10).ok());
  EXPECT_FALSE(GzipCompress("abc", -2).ok());
}

TEST(Gunzip, RejectsCorruptTruncatedAndTrailingInput) {
  const std::string text(10'000, 'z');
  auto gz = GzipCompress(text);
  ASSERT_TRUE(gz.ok());
  EXPECT_FALSE(GzipDecompress("", 1 << 20).ok());
  EXPECT_FALSE(GzipDecompress("not gzip at all", 1 << 20).ok());
  EXPECT_FALSE(GzipDecompress(gz->substr(0, gz->size() - 4), 1 << 20).ok());
  EXPECT_FALSE(GzipDecompress(gz->substr(0, 5), 1 << 20).ok());
  EXPECT_FALSE(GzipDecompress(*gz + "junk", 1 << 20).ok());
  std::string flipped = *gz;
  flipped[flipped.size() - 6] ^= 0x55;  // crc32 mismatch
  EXPECT_FALSE(GzipDecompress(flipped, 1 << 20).ok());
  EXPECT_FALSE(GzipDecompress(RandomBytes(1000, 7), 1 << 20).ok());
}

TEST(Gunzip, StopsAtOutputLimit) {
  auto gz = GzipCompress(std::string(1 << 20, '\0'));
  ASSERT_TRUE(gz.ok());
  EXPECT_FALSE(GzipDecompress(*gz, 1000).ok());
  EXPECT_TRUE(GzipDecompress(*gz, 1 << 20).ok());
}

}  // namespace
// A batch of one alert event as the agent sends it, with `context` readings before it.
std::string OneAlertBatch(const char* state, int context) {
  std::string payload = std::string(R"({"rule":"hot","sensor":"plant/line2/temp","severity":)") +
                        R"("critical","state":")" + state +
                        R"(","value":71.25,"ts_ms":1764167000010,"started_ms":1764166990000)";
  if (context > 0) {
    payload += R"(,"context":[)";
    for (int i = 0; i < context; ++i) {
      if (i > 0) payload += ',';
      payload += "[" + std::to_string(1764166991013 + 1000 * i) + "," +
                 std::to_string(60 + (i * 37) % 11) + "." + std::to_string((i * 53) % 97) + "]";
    }
    payload += "]";
  }
  payload += "}";
  return R"({"node":"edge-7","sent_ms":1764167000050,"items":[{"id":"edge-7:5f3a9c0e12ab44d1:9",)"
         R"("kind":"alert","created_ms":1764167000040,"payload":)" +
         payload + "}]}";
}

TEST(DictCompress, RoundTripsAndBeatsGzipOnBatchesOfOneAlert) {
  // docs/protocol.md, "Compression": a one-event body shrinks by about a third more than
  // with gzip, a firing event with its 10 context readings and a resolved one alike.
  for (const auto& [state, context] : {std::pair{"firing", 10}, std::pair{"resolved", 0}}) {
    const std::string body = OneAlertBatch(state, context);
    auto dict = DictCompress(body);
    auto gz = GzipCompress(body);
    ASSERT_TRUE(dict.ok() && gz.ok());
    RecordProperty(std::string(state) + "_plain_gzip_dict", std::to_string(body.size()) + " " +
                                                                std::to_string(gz->size()) + " " +
                                                                std::to_string(dict->size()));
    EXPECT_LT(dict->size() * 10, gz->size() * 7) << state;  // at least 30% smaller than gzip
    auto back = DictDecompress(*dict, 1 << 20);
    ASSERT_TRUE(back.ok()) << back.error();
    EXPECT_EQ(*back, body);
  }
}

TEST(DictDecompress, RefusesGzipOtherDictionariesCorruptionAndBombs) {
  const std::string text(100'000, 'a');
  auto dict = DictCompress(text);
  ASSERT_TRUE(dict.ok());
  bool too_large = false;
  EXPECT_FALSE(DictDecompress(*dict, 1000, &too_large).ok());
  EXPECT_TRUE(too_large);
  too_large = true;
  auto gz = GzipCompress(text);
  ASSERT_TRUE(gz.ok());
  EXPECT_FALSE(DictDecompress(*gz, 1 << 20, &too_large).ok());
  EXPECT_FALSE(too_large);
  // A zlib stream with another preset dictionary names it by Adler-32: refused.
  z_stream zs{};
  ASSERT_EQ(deflateInit(&zs, 6), Z_OK);
  const std::string other = "some other dictionary";
  ASSERT_EQ(deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(other.data()),
                                 static_cast<uInt>(other.size())),
            Z_OK);
  std::string out(1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = 1000;
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  auto refused = DictDecompress(out, 1 << 20);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("dictionary"), std::string::npos) << refused.error();
  auto varied = DictCompress(RandomBytes(5000, 11));
  ASSERT_TRUE(varied.ok());
  std::string flipped = *varied;
  flipped[flipped.size() / 2] ^= 0x55;
  EXPECT_FALSE(DictDecompress(flipped, 1 << 20).ok());
  EXPECT_FALSE(DictDecompress(dict->substr(0, dict->size() - 3), 1 << 20).ok());
  EXPECT_FALSE(DictDecompress(*dict + "x", 1 << 20).ok());
}

}  // namespace edge::cloudsync
