#include "edge/console/api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edge/cloudsync/gzip.h"
#include "edge/console/codec.h"

namespace edge::console {
namespace {

using nlohmann::json;

constexpr const char* kTokens =
    "node-1 tok-node-1-0123456789\n"
    "node-2 tok-node-2-0123456789\n"
    "admin  tok-admin-0123456789\n";
constexpr const char* kNode1 = "Bearer tok-node-1-0123456789";
constexpr const char* kNode2 = "Bearer tok-node-2-0123456789";
constexpr const char* kAdmin = "Bearer tok-admin-0123456789";

json AlertItem(const std::string& id, int64_t ts_ms, const std::string& node = "node-1",
               const std::string& rule = "boiler-overheat") {
  return json{{"id", id},
              {"kind", "alert"},
              {"created_ms", ts_ms + 5},
              {"payload",
               {{"node", node},
                {"rule", rule},
                {"sensor", "plant/boiler1/temp"},
                {"severity", "critical"},
                {"state", "firing"},
                {"value", 97.5},
                {"ts_ms", ts_ms}}}};
}

json BatchOf(const std::string& node, json items) {
  return json{{"node", node}, {"sent_ms", 1764167000123}, {"items", std::move(items)}};
}

HttpRequest Post(const std::string& auth, std::string body) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/batches";
  r.authorization = auth;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpRequest Get(const std::string& target, const std::string& auth) {
  HttpRequest r;
  r.method = "GET";
  r.target = target;
  r.authorization = auth;
  return r;
}

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

// Fails every call, as a broken disk would.
class FailingStore final : public ConsoleStore {
 public:
  Result<StoreOutcome> StoreBatch(const Batch&, int64_t) override {
    return Status::Error("disk I/O error");
  }
  Result<std::vector<StoredAlert>> Alerts(const AlertQuery&) override {
    return Status::Error("disk I/O error");
  }
  Result<std::vector<StoredAlert>> LatestAlerts(int64_t) override {
    return Status::Error("disk I/O error");
  }
  Result<std::vector<StoredRollup>> Rollups(const RollupQuery&) override {
    return Status::Error("disk I/O error");
  }
  Status StoreStatus(const std::string&, int64_t, const std::string&) override {
    return Status::Error("disk I/O error");
  }
  Result<std::vector<NodeActivity>> Activity() override { return Status::Error("disk I/O error"); }
};

class ConsoleApiTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("console_api_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto tokens = TokenTable::Parse(kTokens, "tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.error();
    tokens_ = std::make_unique<TokenTable>(std::move(tokens.value()));
    auto store = OpenSqliteConsoleStore((dir_ / "console.db").string());
    ASSERT_TRUE(store.ok()) << store.error();
    store_ = std::move(store.value());
    api_ = std::make_unique<ConsoleApi>(*tokens_, *store_, clock_, log_);
  }
  void TearDown() override {
    api_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  HttpResponse Send(const HttpRequest& r) { return api_->Handle(r); }

  std::filesystem::path dir_;
  FakeClock clock_{1'764'167'001'000};
  NullLog log_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<ConsoleStore> store_;
  std::unique_ptr<ConsoleApi> api_;
};

TEST_F(ConsoleApiTest, BatchIsStoredAndAcked) {
  const json batch =
      BatchOf("node-1", {AlertItem("node-1:e:1", 100), AlertItem("node-1:e:2", 200)});
  HttpResponse r = Send(Post(kNode1, batch.dump()));
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = json::parse(r.body);
  EXPECT_EQ(body["accepted"], 2);
  EXPECT_EQ(body["duplicates"], 0);
  EXPECT_EQ(body["acked"], json({"node-1:e:1", "node-1:e:2"}));
}

TEST_F(ConsoleApiTest, ResentBatchIsAckedAsDuplicates) {
  const std::string batch = BatchOf("node-1", {AlertItem("node-1:e:1", 100)}).dump();
  ASSERT_EQ(Send(Post(kNode1, batch)).status, 200);
  HttpResponse r = Send(Post(kNode1, batch));
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = json::parse(r.body);
  EXPECT_EQ(body["accepted"], 0);
  EXPECT_EQ(body["duplicates"], 1);
  EXPECT_EQ(body["acked"], json({"node-1:e:1"}));
}

TEST_F(ConsoleApiTest, AckBodyIsWhatJsonDumpWrites) {
  const std::vector<std::string> ids = {"node-1:e:1",
                                        std::string("node-1:\"q\\\b\f\n\r\t\x01\x1f\x7f"),
                                        "node-1:\u00e9\u20ac", "node-1:e:1"};
  json items = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    items.push_back(AlertItem(ids[i], 100 + static_cast<int64_t>(i)));
  }
  HttpResponse r = Send(Post(kNode1, BatchOf("node-1", items).dump()));
  ASSERT_EQ(r.status, 200) << r.body;
  const json want = {
      {"accepted", 3}, {"duplicates", 1}, {"acked", json::array({ids[0], ids[1], ids[2]})}};
  EXPECT_EQ(r.body, want.dump());
}

TEST_F(ConsoleApiTest, GzipBatchIsAccepted) {
  HttpRequest req = Post(kNode1, Gzip(BatchOf("node-1", {AlertItem("node-1:e:1", 100)}).dump()));
  req.content_encoding = "gzip";
  HttpResponse r = Send(req);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["accepted"], 1);
}

TEST_F(ConsoleApiTest, DictionaryCompressedBatchIsAcceptedAndItsBombIs413) {
  auto body = cloudsync::DictCompress(BatchOf("node-1", {AlertItem("node-1:e:1", 100)}).dump());
  ASSERT_TRUE(body.ok());
  HttpRequest req = Post(kNode1, *body);
  req.content_encoding = "edge-zdict";
  HttpResponse r = Send(req);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["accepted"], 1);

  auto bomb = cloudsync::DictCompress(std::string(9 * 1024 * 1024, ' '));
  ASSERT_TRUE(bomb.ok());
  req = Post(kNode1, *bomb);
  req.content_encoding = "edge-zdict";
  EXPECT_EQ(Send(req).status, 413);
  req = Post(kNode1, Gzip("{}"));  // gzip labelled as edge-zdict
  req.content_encoding = "edge-zdict";
  EXPECT_EQ(Send(req).status, 400);
}

TEST_F(ConsoleApiTest, GzipBombIs413) {
  HttpRequest req = Post(kNode1, Gzip(std::string(9 * 1024 * 1024, ' ')));
  req.content_encoding = "gzip";
  EXPECT_EQ(Send(req).status, 413);
}

TEST_F(ConsoleApiTest, CorruptGzipIs400) {
  HttpRequest req = Post(kNode1, "not gzip at all");
  req.content_encoding = "gzip";
  HttpResponse r = Send(req);
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(json::parse(r.body).contains("error"));
}

TEST_F(ConsoleApiTest, UnsupportedContentEncodingIs415) {
  HttpRequest req = Post(kNode1, BatchOf("node-1", json::array()).dump());
  req.content_encoding = "br";
  EXPECT_EQ(Send(req).status, 415);
}

TEST_F(ConsoleApiTest, MissingTokenIs401WithChallenge) {
  HttpResponse r = Send(Post("", BatchOf("node-1", json::array()).dump()));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(Header(r, "WWW-Authenticate").find("Bearer"), std::string::npos);
}

TEST_F(ConsoleApiTest, UnknownTokenIs401) {
  EXPECT_EQ(Send(Post("Bearer wrong", BatchOf("node-1", json::array()).dump())).status, 401);
  EXPECT_EQ(Send(Get("/v1/alerts", "Bearer wrong")).status, 401);
  EXPECT_EQ(Send(Get("/v1/nodes", "Basic dG9rLWFkbWluLTAxMjM0NTY3ODk=")).status, 401);
}

TEST_F(ConsoleApiTest, BatchForAnotherNodeIs403AndNotStored) {
  HttpResponse r = Send(Post(kNode2, BatchOf("node-1", {AlertItem("node-1:e:1", 100)}).dump()));
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(json::parse(r.body).contains("error"));
  EXPECT_EQ(json::parse(Send(Get("/v1/alerts", kAdmin)).body).size(), 0u);
}

TEST_F(ConsoleApiTest, AdminTokenCannotPostBatches) {
  EXPECT_EQ(Send(Post(kAdmin, BatchOf("admin", json::array()).dump())).status, 403);
}

TEST_F(ConsoleApiTest, NodeTokenOnAdminEndpointsIs403) {
  EXPECT_EQ(Send(Get("/v1/alerts", kNode1)).status, 403);
  EXPECT_EQ(Send(Get("/v1/nodes", kNode1)).status, 403);
  EXPECT_EQ(Send(Get("/", kNode1)).status, 403);
}

TEST_F(ConsoleApiTest, MalformedBatchIs400WithError) {
  for (const std::string body : {"{", "[]", R"({"node":"node-1","sent_ms":1})",
                                 R"({"node":"node-1","sent_ms":"1","items":[]})"}) {
    HttpResponse r = Send(Post(kNode1, body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_TRUE(json::parse(r.body)["error"].is_string()) << body;
  }
}

TEST_F(ConsoleApiTest, StoreFailureIs5xxWithoutAck) {
  FailingStore failing;
  ConsoleApi api(*tokens_, failing, clock_, log_);
  HttpResponse r = api.Handle(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:1", 1)}).dump()));
  EXPECT_GE(r.status, 500);
  EXPECT_FALSE(json::parse(r.body).contains("acked"));
  EXPECT_GE(api.Handle(Get("/v1/alerts", kAdmin)).status, 500);
  EXPECT_GE(api.Handle(Get("/v1/nodes", kAdmin)).status, 500);
  EXPECT_GE(api.Handle(Get("/", kAdmin)).status, 500);
}

TEST_F(ConsoleApiTest, AlertsCarryIdAndReceivedMsOldestFirst) {
  ASSERT_EQ(Send(Post(kNode1, BatchOf("node-1",
                                      {AlertItem("node-1:e:2", 200), AlertItem("node-1:e:1", 100)})
                                  .dump()))
                .status,
            200);
  HttpResponse r = Send(Get("/v1/alerts", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  const json alerts = json::parse(r.body);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["id"], "node-1:e:1");
  EXPECT_EQ(alerts[0]["received_ms"], clock_.WallMs());
  EXPECT_EQ(alerts[0]["rule"], "boiler-overheat");
  EXPECT_EQ(alerts[0]["value"], 97.5);
  EXPECT_EQ(alerts[1]["id"], "node-1:e:2");
}

TEST_F(ConsoleApiTest, AlertsWithoutNodeOrEpisodeGetThemFromTheBatchAndTheirFields) {
  json lean = AlertItem("node-1:e:1", 100);
  lean["payload"].erase("node");
  lean["payload"]["started_ms"] = 90;
  json own = AlertItem("node-1:e:2", 200);
  own["payload"]["episode"] = "kept-as-sent";
  ASSERT_EQ(Send(Post(kNode1, BatchOf("node-1", {lean, own}).dump())).status, 200);
  HttpResponse r = Send(Get("/v1/alerts", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  const json alerts = json::parse(r.body);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["node"], "node-1");
  EXPECT_EQ(alerts[0]["episode"], "boiler-overheat|plant/boiler1/temp|90");
  EXPECT_EQ(alerts[1]["episode"], "kept-as-sent");
  EXPECT_FALSE(alerts[1].contains("started_ms"));
}

TEST_F(ConsoleApiTest, AlertsQueryFiltersByNodeSinceAndLimit) {
  ASSERT_EQ(Send(Post(kNode1,
                      BatchOf("node-1", {AlertItem("node-1:e:1", 100), AlertItem("node-1:e:2", 200),
                                         AlertItem("node-1:e:3", 300)})
                          .dump()))
                .status,
            200);
  ASSERT_EQ(
      Send(Post(kNode2, BatchOf("node-2", {AlertItem("node-2:e:1", 250, "node-2")}).dump())).status,
      200);
  const auto ids = [&](const std::string& target) {
    HttpResponse r = Send(Get(target, kAdmin));
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    std::vector<std::string> out;
    for (const auto& a : json::parse(r.body)) out.push_back(a["id"]);
    return out;
  };
  EXPECT_EQ(ids("/v1/alerts?node=node-2"), (std::vector<std::string>{"node-2:e:1"}));
  EXPECT_EQ(ids("/v1/alerts?since=200"),
            (std::vector<std::string>{"node-1:e:2", "node-2:e:1", "node-1:e:3"}));
  EXPECT_EQ(ids("/v1/alerts?limit=1"), (std::vector<std::string>{"node-1:e:1"}));
  EXPECT_EQ(ids("/v1/alerts?node=node%2D1&since=150&limit=10"),
            (std::vector<std::string>{"node-1:e:2", "node-1:e:3"}));
  EXPECT_EQ(ids("/v1/alerts?limit=999999").size(), 4u);
}

TEST_F(ConsoleApiTest, BadAlertsQueryIs400) {
  for (const std::string target :
       {"/v1/alerts?since=abc", "/v1/alerts?limit=-1", "/v1/alerts?limit=", "/v1/alerts?limit=1x",
        "/v1/alerts?node=%zz", "/v1/alerts?since=99999999999999999999999"}) {
    EXPECT_EQ(Send(Get(target, kAdmin)).status, 400) << target;
  }
}

TEST_F(ConsoleApiTest, NodesListsEveryTokenNode) {
  ASSERT_EQ(Send(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:1", 100)}).dump())).status,
            200);
  HttpResponse r = Send(Get("/v1/nodes", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  const json nodes = json::parse(r.body);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0], json({{"node", "node-1"},
                            {"last_seen_ms", clock_.WallMs()},
                            {"alerts", 1},
                            {"status_ms", nullptr},
                            {"status", nullptr}}));
  EXPECT_EQ(nodes[1], json({{"node", "node-2"},
                            {"last_seen_ms", nullptr},
                            {"alerts", 0},
                            {"status_ms", nullptr},
                            {"status", nullptr}}));
}

TEST_F(ConsoleApiTest, HealthzNeedsNoToken) {
  HttpResponse r = Send(Get("/healthz", ""));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(ConsoleApiTest, UnknownPathIs404) {
  EXPECT_EQ(Send(Get("/v2/batches", kAdmin)).status, 404);
  EXPECT_EQ(Send(Get("/v1/alerts/extra", kAdmin)).status, 404);
}

TEST_F(ConsoleApiTest, WrongMethodIs405WithAllow) {
  HttpResponse r = Send(Get("/v1/batches", kNode1));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "POST");
  HttpRequest del = Get("/v1/alerts", kAdmin);
  del.method = "DELETE";
  EXPECT_EQ(Send(del).status, 405);
}

TEST_F(ConsoleApiTest, DashboardEscapesStoredText) {
  ASSERT_EQ(Send(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:1", 100, "node-1",
                                                           "<script>alert('x')</script>")})
                                  .dump()))
                .status,
            200);
  HttpResponse r = Send(Get("/", kAdmin));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body.find("<script>"), std::string::npos);
  EXPECT_NE(r.body.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(r.body.find("node-2"), std::string::npos);
}

TEST_F(ConsoleApiTest, DashboardAcceptsBasicAuthWithAdminTokenAsPassword) {
  // base64("ops:tok-admin-0123456789")
  EXPECT_EQ(Send(Get("/", "Basic b3BzOnRvay1hZG1pbi0wMTIzNDU2Nzg5")).status, 200);
  HttpResponse r = Send(Get("/", ""));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(Header(r, "WWW-Authenticate").find("Basic"), std::string::npos);
}

TEST_F(ConsoleApiTest, DashboardReadsBasicCredentialsWithOrWithoutPadding) {
  // base64("o:tok-admin-0123456789") ends in "==", base64("op:tok-admin-0123456789") in "=".
  EXPECT_EQ(Send(Get("/", "Basic bzp0b2stYWRtaW4tMDEyMzQ1Njc4OQ==")).status, 200);
  EXPECT_EQ(Send(Get("/", "Basic bzp0b2stYWRtaW4tMDEyMzQ1Njc4OQ")).status, 200);
  EXPECT_EQ(Send(Get("/", "Basic b3A6dG9rLWFkbWluLTAxMjM0NTY3ODk")).status, 200);
  // A last character that completes no byte is dropped; one outside the alphabet refuses.
  EXPECT_EQ(Send(Get("/", "Basic b3BzOnRvay1hZG1pbi0wMTIzNDU2Nzg5A")).status, 200);
  EXPECT_EQ(Send(Get("/", "Basic b3BzOnRvay1hZG1pbi0wMTIzNDU2Nzg5!")).status, 401);
  EXPECT_EQ(Send(Get("/", "Basic b3A6dG9r*WFkbWluLTAxMjM0NTY3ODk=")).status, 401);
}

json RollupItem(const std::string& id, const std::string& sensor, int64_t start_ms,
                const std::string& node = "node-1") {
  return json{{"id", id},
              {"kind", "rollup"},
              {"created_ms", start_ms + 60'001},
              {"payload",
               {{"node", node},
                {"sensor", sensor},
                {"start_ms", start_ms},
                {"end_ms", start_ms + 60'000},
                {"count", 60},
                {"min", 20.5},
                {"max", 23},
                {"mean", 21.75},
                {"last", 22.0}}}};
}

HttpRequest PostStatusRequest(const std::string& auth, const json& body) {
  HttpRequest r = Post(auth, body.dump());
  r.target = "/v1/status";
  return r;
}

json StatusBody(const std::string& node = "node-1") {
  return json{{"node", node},
              {"sent_ms", 1764167000123},
              {"status",
               {{"agent_version", "1.4.2"},
                {"policy_version", "2025-11-20.1"},
                {"uptime_s", 93784},
                {"mqtt_connected", true},
                {"db_bytes", 5 * 1024 * 1024},
                {"backlog", {{"alert", 2}, {"rollup", 40}, {"status", 0}}},
                {"evicted", {{"alert", 0}, {"rollup", 7}, {"status", 0}}},
                {"dead_lettered", {{"alert", 1}, {"rollup", 0}, {"status", 0}}},
                {"drops", {{"queue_full", 3}, {"rejected", 11}}}}}};
}

TEST_F(ConsoleApiTest, RollupsAreStoredDedupedAndQueried) {
  const std::string batch =
      BatchOf("node-1", {RollupItem("node-1:e:1", "a/temp", 0),
                         RollupItem("node-1:e:2", "b/temp", 60'000), AlertItem("node-1:e:3", 100)})
          .dump();
  HttpResponse r = Send(Post(kNode1, batch));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["accepted"], 3);
  r = Send(Post(kNode1, batch));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["duplicates"], 3);

  r = Send(Get("/v1/rollups", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  const json all = json::parse(r.body);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], json({{"id", "node-1:e:1"},
                          {"node", "node-1"},
                          {"sensor", "a/temp"},
                          {"start_ms", 0},
                          {"end_ms", 60'000},
                          {"count", 60},
                          {"min", 20.5},
                          {"max", 23.0},
                          {"mean", 21.75},
                          {"last", 22.0},
                          {"received_ms", clock_.WallMs()}}));
  r = Send(Get("/v1/rollups?node=node-1&sensor=b%2Ftemp&since=1&limit=5", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json::parse(r.body).size(), 1u);
  EXPECT_EQ(json::parse(r.body)[0]["id"], "node-1:e:2");
  r = Send(Get("/v1/rollups?node=node-2", kAdmin));
  EXPECT_EQ(json::parse(r.body), json::array());
  // Rollups are not alerts.
  EXPECT_EQ(json::parse(Send(Get("/v1/alerts", kAdmin)).body).size(), 1u);
}

TEST_F(ConsoleApiTest, MalformedRollupIs400NamingTheItem) {
  json item = RollupItem("node-1:e:1", "a/temp", 0);
  item["payload"].erase("mean");
  HttpResponse r = Send(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:0", 1), item}).dump()));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(json::parse(r.body)["error"].get<std::string>().find("items[1]"), std::string::npos);
  EXPECT_EQ(json::parse(Send(Get("/v1/alerts", kAdmin)).body).size(), 0u);  // nothing stored
}

TEST_F(ConsoleApiTest, RollupsNeedTheAdminTokenAndAGoodQuery) {
  EXPECT_EQ(Send(Get("/v1/rollups", kNode1)).status, 403);
  EXPECT_EQ(Send(Get("/v1/rollups", "")).status, 401);
  for (const char* target :
       {"/v1/rollups?since=x", "/v1/rollups?limit=-2", "/v1/rollups?node=%z"}) {
    EXPECT_EQ(Send(Get(target, kAdmin)).status, 400) << target;
  }
}

TEST_F(ConsoleApiTest, StatusIsStoredAndShownInNodes) {
  HttpResponse r = Send(PostStatusRequest(kNode1, StatusBody()));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["received_ms"], clock_.WallMs());

  r = Send(Get("/v1/nodes", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  const json nodes = json::parse(r.body);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]["node"], "node-1");
  EXPECT_EQ(nodes[0]["last_seen_ms"], clock_.WallMs());
  EXPECT_EQ(nodes[0]["status_ms"], clock_.WallMs());
  EXPECT_EQ(nodes[0]["status"], StatusBody()["status"]);
  EXPECT_EQ(nodes[1]["status"], nullptr);

  // A newer report replaces the older one.
  json newer = StatusBody();
  newer["status"]["uptime_s"] = 93814;
  clock_.Advance(30'000);
  ASSERT_EQ(Send(PostStatusRequest(kNode1, newer)).status, 200);
  const json after = json::parse(Send(Get("/v1/nodes", kAdmin)).body);
  EXPECT_EQ(after[0]["status"]["uptime_s"], 93814);
  EXPECT_EQ(after[0]["status_ms"], clock_.WallMs());
}

TEST_F(ConsoleApiTest, GzipStatusIsAccepted) {
  HttpRequest r = PostStatusRequest(kNode1, StatusBody());
  r.body = Gzip(r.body);
  r.content_encoding = "gzip";
  EXPECT_EQ(Send(r).status, 200);
}

TEST_F(ConsoleApiTest, StatusIsOnlyAcceptedFromTheNodeItself) {
  EXPECT_EQ(Send(PostStatusRequest(kNode2, StatusBody("node-1"))).status, 403);
  EXPECT_EQ(Send(PostStatusRequest(kAdmin, StatusBody("node-1"))).status, 403);
  EXPECT_EQ(Send(PostStatusRequest("", StatusBody("node-1"))).status, 401);
  const json nodes = json::parse(Send(Get("/v1/nodes", kAdmin)).body);
  EXPECT_EQ(nodes[0]["status"], nullptr);
  EXPECT_EQ(nodes[0]["last_seen_ms"], nullptr);
}

TEST_F(ConsoleApiTest, MalformedOrOversizedStatusIsRejected) {
  json no_status = StatusBody();
  no_status.erase("status");
  HttpResponse r = Send(PostStatusRequest(kNode1, no_status));
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(json::parse(r.body)["error"].is_string());
  json huge = StatusBody();
  huge["status"]["note"] = std::string(kMaxStatusBytes, 'x');
  EXPECT_EQ(Send(PostStatusRequest(kNode1, huge)).status, 413);
  EXPECT_EQ(Send(Get("/v1/status", kNode1)).status, 405);
}

TEST_F(ConsoleApiTest, StatusStoreFailureIs503) {
  FailingStore failing;
  ConsoleApi api(*tokens_, failing, clock_, log_);
  EXPECT_EQ(api.Handle(PostStatusRequest(kNode1, StatusBody())).status, 503);
  EXPECT_EQ(api.Handle(Get("/v1/rollups", kAdmin)).status, 503);
}

// The value of one series in a Prometheus text body, or -1 if absent.
double Series(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST_F(ConsoleApiTest, MetricsCountBatchesByResult) {
  ASSERT_EQ(Send(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:1", 1),
                                                 RollupItem("node-1:e:2", "a", 0)})
                                  .dump()))
                .status,
            200);
  ASSERT_EQ(Send(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:1", 1)}).dump())).status, 200);
  ASSERT_EQ(Send(Post(kNode1, "{}")).status, 400);
  ASSERT_EQ(Send(Post(kNode2, BatchOf("node-1", json::array()).dump())).status, 403);
  ASSERT_EQ(Send(Post("", "{}")).status, 401);
  ASSERT_EQ(Send(PostStatusRequest(kNode1, StatusBody())).status, 200);

  HttpResponse r = Send(Get("/metrics", ""));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(Series(r.body, R"(edge_console_batches_total{result="accepted"})"), 2);
  EXPECT_EQ(Series(r.body, R"(edge_console_batches_total{result="malformed"})"), 1);
  EXPECT_EQ(Series(r.body, R"(edge_console_batches_total{result="forbidden"})"), 1);
  EXPECT_EQ(Series(r.body, R"(edge_console_batches_total{result="unauthorized"})"), 1);
  EXPECT_EQ(Series(r.body, R"(edge_console_batches_total{result="too_large"})"), 0);
  EXPECT_EQ(Series(r.body, R"(edge_console_status_reports_total{result="accepted"})"), 1);
  EXPECT_EQ(Series(r.body, R"(edge_console_items_stored_total{kind="alert"})"), 1);
  EXPECT_EQ(Series(r.body, R"(edge_console_items_stored_total{kind="rollup"})"), 1);
  EXPECT_EQ(Series(r.body, "edge_console_items_duplicate_total"), 1);
}

TEST_F(ConsoleApiTest, DashboardShowsTheLatestStatus) {
  json body = StatusBody();
  body["status"]["agent_version"] = "<b>1.4.2</b>";
  ASSERT_EQ(Send(PostStatusRequest(kNode1, body)).status, 200);
  HttpResponse r = Send(Get("/", kAdmin));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("<b>"), std::string::npos);
  EXPECT_NE(r.body.find("&lt;b&gt;1.4.2&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(r.body.find("2025-11-20.1"), std::string::npos);
  EXPECT_NE(r.body.find("alert 2, rollup 40, status 0"), std::string::npos);
  EXPECT_NE(r.body.find("queue_full 3, rejected 11"), std::string::npos);
  EXPECT_NE(r.body.find("5.0 MiB"), std::string::npos);
  EXPECT_NE(r.body.find("1d 2h"), std::string::npos);  // 93784 s
}

}  // namespace
}  // namespace edge::console

namespace edge::console {
namespace {

TEST_F(ConsoleApiTest, UploadWithUnknownTokenIsRefusedFromItsHeaders) {
  const HeadVerdict verdict = api_->CheckHead(Post("Bearer not-a-token", ""));
  EXPECT_TRUE(verdict.needs_token);
  ASSERT_TRUE(verdict.refusal.has_value());
  EXPECT_EQ(verdict.refusal->status, 401);
}

TEST_F(ConsoleApiTest, UploadWithKnownTokenPassesTheHeaderCheck) {
  const HeadVerdict verdict = api_->CheckHead(Post(kNode1, ""));
  EXPECT_TRUE(verdict.needs_token);
  EXPECT_FALSE(verdict.refusal.has_value());
}

TEST_F(ConsoleApiTest, HealthAndMetricsNeedNoTokenInTheHeaderCheck) {
  for (const char* path : {"/healthz", "/metrics", "/no-such-path"}) {
    const HeadVerdict verdict = api_->CheckHead(Get(path, ""));
    EXPECT_FALSE(verdict.needs_token) << path;
    EXPECT_FALSE(verdict.refusal.has_value()) << path;
  }
}

TEST_F(ConsoleApiTest, BatchOverTheNodeQuotaIs429WithRetryAfter) {
  api_.reset();
  store_.reset();
  auto store = OpenSqliteConsoleStore((dir_ / "quota.db").string(), StoreOptions{1});
  ASSERT_TRUE(store.ok()) << store.error();
  store_ = std::move(store.value());
  api_ = std::make_unique<ConsoleApi>(*tokens_, *store_, clock_, log_);
  HttpResponse r = Send(Post(kNode1, BatchOf("node-1", {AlertItem("node-1:e:1", 100)}).dump()));
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(Header(r, "Retry-After"), "60");
  const std::string metrics = Send(Get("/metrics", "")).body;
  EXPECT_NE(metrics.find("edge_console_batches_total{result=\"over_quota\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace edge::console

namespace edge::console {
namespace {

TEST_F(ConsoleApiTest, HeadCheckNamesThePrincipalItAuthenticated) {
  const HeadVerdict verdict = api_->CheckHead(Post(kNode1, ""));
  ASSERT_TRUE(verdict.principal.has_value());
  EXPECT_EQ(verdict.principal->node, "node-1");
  EXPECT_FALSE(verdict.principal->admin);
}

TEST_F(ConsoleApiTest, HandleTakesThePrincipalOfTheHeadCheckWithoutALookup) {
  // The server hands the head check's principal on with the request; the handler takes it
  // and does not look the token up again (here it would not be found).
  HttpRequest request = Post("Bearer not-a-token", BatchOf("node-1", json::array()).dump());
  request.principal = Principal{"node-1", false};
  EXPECT_EQ(Send(request).status, 200);
  request.principal.reset();
  EXPECT_EQ(Send(request).status, 401);
}

}  // namespace
}  // namespace edge::console
