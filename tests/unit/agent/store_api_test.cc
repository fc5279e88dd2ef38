#include "edge/agent/store_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace edge::agent {
namespace {

using testing::TempDir;

class ReadingsApi : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = StoreWriter::Open({dir_.File("a.db")});
    ASSERT_TRUE(w.ok()) << w.error();
    writer_ = std::move(*w);
    std::vector<StoreWriter::NewReading> batch;
    for (int i = 0; i < 5; ++i) batch.push_back({"plant/a b", 1000 + i, i + 0.5});
    ASSERT_TRUE(writer_->AppendReadings(batch, 2000));
    auto r = StoreReader::Open({dir_.File("a.db")});
    ASSERT_TRUE(r.ok()) << r.error();
    reader_ = std::move(*r);
  }

  TempDir dir_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<StoreReader> reader_;
};

TEST_F(ReadingsApi, ReturnsTheRangeOfAPercentEncodedSensorOldestFirst) {
  HttpResponse r =
      ServeReadings(*reader_, "/v1/readings?sensor=plant%2Fa+b&since=1001&until=1003&limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["sensor"], "plant/a b");
  EXPECT_EQ(j["readings"], nlohmann::json::parse("[[1001,1.5],[1002,2.5]]"));
}

TEST_F(ReadingsApi, WithoutBoundsReturnsTheWholeRing) {
  HttpResponse r = ServeReadings(*reader_, "/v1/readings?sensor=plant/a%20b");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["readings"].size(), 5u);
}

TEST_F(ReadingsApi, MalformedParametersAre400) {
  EXPECT_EQ(ServeReadings(*reader_, "/v1/readings").status, 400);
  EXPECT_EQ(ServeReadings(*reader_, "/v1/readings?sensor=").status, 400);
  EXPECT_EQ(ServeReadings(*reader_, "/v1/readings?sensor=x&since=yesterday").status, 400);
  EXPECT_EQ(ServeReadings(*reader_, "/v1/readings?sensor=x&limit=0").status, 400);
  EXPECT_EQ(ServeReadings(*reader_, "/v1/readings?sensor=%zz").status, 400);
  EXPECT_EQ(ServeReadings(*reader_, "/v1/readings?sensor=x%4").status, 400);
}

TEST_F(ReadingsApi, UnknownSensorIsAnEmptyList) {
  HttpResponse r = ServeReadings(*reader_, "/v1/readings?sensor=nope");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(nlohmann::json::parse(r.body)["readings"].empty());
}

}  // namespace
}  // namespace edge::agent
