#include "edge/cloudsync/policy_message.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace edge::cloudsync {
namespace {

namespace fs = std::filesystem;

class KeyDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/policy_message_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // A fresh pair: signing and verify keys.
  std::pair<std::unique_ptr<SigningKey>, std::unique_ptr<VerifyKey>> Pair(const std::string& tag) {
    EXPECT_TRUE(GenerateKeyPair(Path(tag + ".key"), Path(tag + ".pub")).ok());
    auto sk = LoadSigningKey(Path(tag + ".key"));
    auto vk = LoadVerifyKey(Path(tag + ".pub"));
    EXPECT_TRUE(sk.ok()) << sk.error();
    EXPECT_TRUE(vk.ok()) << vk.error();
    return {std::move(*sk), std::move(*vk)};
  }

  fs::path dir_;
};

PolicyDocument Doc() {
  PolicyDocument d;
  d.name = "boilers";
  d.version = 3;
  d.seq = 1764167000123;
  d.body = "rules:\n  - name: hot\n    sensor: boiler/*\n    threshold: {above: 90}\n";
  d.created_ms = 1764167000123;
  return d;
}

TEST(SigningInput, IsTheDocumentedLayout) {
  EXPECT_EQ(SigningInput("p", 12, 345, "a\nb"), "edge-policy/2\np\n12\n345\na\nb");
}

TEST_F(KeyDir, SignedDocumentVerifiesAndAnyChangeBreaksIt) {
  auto [sk, vk] = Pair("a");
  PolicyDocument d = Doc();
  ASSERT_TRUE(SignDocument(*sk, d).ok());
  EXPECT_EQ(d.signature.size(), 88u);  // 64 bytes in padded base64
  EXPECT_TRUE(VerifyDocument(*vk, d).ok());

  PolicyDocument body = d;
  body.body += " ";
  EXPECT_FALSE(VerifyDocument(*vk, body).ok());
  PolicyDocument version = d;
  version.version = 4;
  EXPECT_FALSE(VerifyDocument(*vk, version).ok());
  PolicyDocument name = d;
  name.name = "boilers2";
  EXPECT_FALSE(VerifyDocument(*vk, name).ok());
  PolicyDocument seq = d;
  seq.seq += 1;
  EXPECT_FALSE(VerifyDocument(*vk, seq).ok());
  PolicyDocument garbage = d;
  garbage.signature = "not base64!";
  EXPECT_FALSE(VerifyDocument(*vk, garbage).ok());
}

TEST_F(KeyDir, AnotherKeysSignatureIsRefused) {
  auto [sk_a, vk_a] = Pair("a");
  auto [sk_b, vk_b] = Pair("b");
  PolicyDocument d = Doc();
  ASSERT_TRUE(SignDocument(*sk_b, d).ok());
  EXPECT_TRUE(VerifyDocument(*vk_b, d).ok());
  const Status s = VerifyDocument(*vk_a, d);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
}

TEST_F(KeyDir, KeyFilesHaveModesAndAreNotOverwritten) {
  ASSERT_TRUE(GenerateKeyPair(Path("k.key"), Path("k.pub")).ok());
  struct stat st {};
  ASSERT_EQ(::stat(Path("k.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Status again = GenerateKeyPair(Path("k.key"), Path("k2.pub"));
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.message().find("exists"), std::string::npos);
}

TEST_F(KeyDir, WrongKeyFilesGiveClearErrors) {
  ASSERT_TRUE(GenerateKeyPair(Path("k.key"), Path("k.pub")).ok());
  auto priv_as_pub = LoadVerifyKey(Path("k.key"));
  ASSERT_FALSE(priv_as_pub.ok());
  EXPECT_NE(priv_as_pub.error().find("private key"), std::string::npos);
  auto pub_as_priv = LoadSigningKey(Path("k.pub"));
  EXPECT_FALSE(pub_as_priv.ok());
  auto missing = LoadVerifyKey(Path("nope.pub"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("nope.pub"), std::string::npos);
  std::ofstream(Path("junk.pub")) << "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  EXPECT_FALSE(LoadVerifyKey(Path("junk.pub")).ok());
}

TEST(PolicyDocumentCodec, RoundTrips) {
  PolicyDocument d = Doc();
  d.signature = std::string(86, 'A') + "==";
  auto back = DecodePolicyDocument(EncodePolicyDocument(d));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->name, d.name);
  EXPECT_EQ(back->version, d.version);
  EXPECT_EQ(back->seq, d.seq);
  EXPECT_EQ(back->body, d.body);
  EXPECT_EQ(back->signature, d.signature);
  EXPECT_EQ(back->created_ms, d.created_ms);
  EXPECT_EQ(*PolicyMessageType(EncodePolicyDocument(d)), "policy");
}

TEST(PolicyDocumentCodec, RejectsBadShapes) {
  for (const char* bad : {
           "",
           "[]",
           "{",
           R"({"name":"p","version":0,"body":"x","signature":"s"})",
           R"({"name":"p","version":1.5,"body":"x","signature":"s"})",
           R"({"name":"p","version":"1","body":"x","signature":"s"})",
           R"({"name":"../etc","version":1,"body":"x","signature":"s"})",
           R"({"name":"p","version":1,"body":7,"signature":"s"})",
           R"({"name":"p","version":18446744073709551615,"body":"x","signature":"s"})",
           R"({"name":"p","version":1,"seq":0,"body":"x","signature":"s"})",
           R"({"name":"p","version":1,"seq":"9","body":"x","signature":"s"})",
       }) {
    EXPECT_FALSE(DecodePolicyDocument(bad).ok()) << bad;
  }
}

TEST_F(KeyDir, AnUnsignedOrUnsequencedDocumentDecodesButNeverVerifies) {
  auto [sk, vk] = Pair("a");
  auto unsigned_doc = DecodePolicyDocument(R"({"name":"p","version":1,"seq":5,"body":"x"})");
  ASSERT_TRUE(unsigned_doc.ok()) << unsigned_doc.error();
  EXPECT_TRUE(unsigned_doc->signature.empty());
  Status unsigned_status = VerifyDocument(*vk, *unsigned_doc);
  EXPECT_FALSE(unsigned_status.ok());
  EXPECT_NE(unsigned_status.message().find("not signed"), std::string::npos)
      << unsigned_status.message();

  PolicyDocument d = Doc();
  d.seq = 0;
  EXPECT_FALSE(SignDocument(*sk, d).ok());
  // A real signature over the seq-0 input: only the missing sequence can reject it.
  auto sig = sk->Sign(SigningInput(d.name, d.version, 0, d.body));
  ASSERT_TRUE(sig.ok()) << sig.error();
  d.signature = *sig;
  auto unsequenced = DecodePolicyDocument(EncodePolicyDocument(d));
  ASSERT_TRUE(unsequenced.ok()) << unsequenced.error();
  EXPECT_EQ(unsequenced->seq, 0);
  EXPECT_TRUE(vk->Verify(SigningInput(d.name, d.version, 0, d.body), d.signature).ok());
  Status unsequenced_status = VerifyDocument(*vk, *unsequenced);
  EXPECT_FALSE(unsequenced_status.ok());
  EXPECT_NE(unsequenced_status.message().find("no fleet sequence"), std::string::npos)
      << unsequenced_status.message();
}

TEST(PolicyReportCodec, RoundTripsAndChecksState) {
  PolicyReport r{"boilers", 4, "rejected", "invalid", std::string(5000, 'x')};
  auto back = DecodePolicyReport(EncodePolicyReport(r));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->state, "rejected");
  EXPECT_EQ(back->reason, "invalid");
  EXPECT_EQ(back->detail.size(), 1024u);  // bounded
  EXPECT_FALSE(DecodePolicyReport(R"({"name":"p","version":1,"state":"maybe"})").ok());
}

TEST(PolicyHelloCodec, RoundTripsLabelsAndApplied) {
  PolicyHello h{"node-1", {{"site", "plant-1"}, {"line", "a"}}, "0.1.0", {{"boilers", 7}}};
  auto back = DecodePolicyHello(EncodePolicyHello(h));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->node, "node-1");
  EXPECT_EQ(back->labels, h.labels);
  ASSERT_TRUE(back->applied.has_value());
  EXPECT_EQ(back->applied->second, 7);
  h.applied.reset();
  back = DecodePolicyHello(EncodePolicyHello(h));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->applied.has_value());
  EXPECT_FALSE(DecodePolicyHello(R"({"node":"n","labels":{"a":1}})").ok());
}

TEST(PolicyMessageCodecs, ErrorsNameTheMessageAndTheFirstBadField) {
  EXPECT_EQ(DecodePolicyDocument("[1]").error(), "policy: not a JSON object");
  EXPECT_EQ(DecodePolicyDocument("{").error(), "policy: not valid JSON");
  EXPECT_EQ(DecodePolicyReport(R"({"name":"a b","version":0,"state":"x"})").error(),
            "report: invalid \"name\"");
  EXPECT_EQ(DecodePolicyReport(R"({"name":"p","version":1,"state":"x","reason":7})").error(),
            "report: \"state\" must be \"applied\" or \"rejected\"");
  EXPECT_EQ(DecodePolicyHello(R"({"node":"n","applied":{"name":"p"}})").error(),
            "hello: applied: missing \"version\"");
  EXPECT_EQ(DecodePolicyHello(R"({"node":"n","labels":{"k":1},"applied":7})").error(),
            "hello: label \"k\" is not a short string");
  EXPECT_EQ(PolicyMessageType(R"({"type":5})").error(), "message: \"type\" must be a string");
}

TEST(PolicyReportCodec, ADetailIsCutToOneKilobyte) {
  const std::string json =
      R"({"name":"p","version":1,"state":"rejected","detail":")" + std::string(5000, 'x') + "\"}";
  auto report = DecodePolicyReport(json);
  ASSERT_TRUE(report.ok()) << report.error();
  EXPECT_EQ(report->detail, std::string(1024, 'x'));
}

TEST(ParseLabels, AcceptsTheDocumentedForm) {
  auto l = ParseLabels(" site=plant-1, line=a ,zone/x=");
  ASSERT_TRUE(l.ok()) << l.error();
  EXPECT_EQ(l->size(), 3u);
  EXPECT_EQ(l->at("site"), "plant-1");
  EXPECT_EQ(l->at("line"), "a");
  EXPECT_EQ(l->at("zone/x"), "");
  EXPECT_TRUE(ParseLabels("")->empty());
}

TEST(ParseLabels, RejectsWithAReason) {
  EXPECT_NE(ParseLabels("site").error().find("key=value"), std::string::npos);
  EXPECT_NE(ParseLabels("a=1,a=2").error().find("twice"), std::string::npos);
  EXPECT_FALSE(ParseLabels("=x").ok());
  EXPECT_FALSE(ParseLabels("a b=x").ok());
  EXPECT_FALSE(ParseLabels("a=x y").ok());
  EXPECT_FALSE(ParseLabels("a=" + std::string(64, 'v')).ok());
}

}  // namespace
}  // namespace edge::cloudsync
