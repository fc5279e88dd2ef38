#include "edge/cloudsync/console_url.h"

#include <gtest/gtest.h>

namespace edge::cloudsync {
namespace {

TEST(ConsoleUrl, ParsesHostAndPort) {
  auto url = ParseConsoleUrl("http://console.local:8080");
  ASSERT_TRUE(url.ok()) << url.error();
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "console.local");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->base_path, "");
  EXPECT_EQ(url->Target("/v1/batches"), "/v1/batches");
  EXPECT_EQ(url->HostHeader(), "console.local:8080");
}

TEST(ConsoleUrl, DefaultsPortBySchemeAndOmitsItFromHostHeader) {
  auto http = ParseConsoleUrl("HTTP://10.0.0.5");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->port, 80);
  EXPECT_EQ(http->HostHeader(), "10.0.0.5");
  auto https = ParseConsoleUrl("https://console.example.com/");
  ASSERT_TRUE(https.ok());
  EXPECT_TRUE(https->tls);
  EXPECT_EQ(https->port, 443);
}

TEST(ConsoleUrl, KeepsBasePathWithoutTrailingSlash) {
  auto url = ParseConsoleUrl("http://gw:9000/edge/console//");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->base_path, "/edge/console");
  EXPECT_EQ(url->Target("/v1/batches"), "/edge/console/v1/batches");
}

TEST(ConsoleUrl, ParsesBracketedIpv6) {
  auto url = ParseConsoleUrl("http://[::1]:7000/api");
  ASSERT_TRUE(url.ok()) << url.error();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->HostHeader(), "[::1]:7000");
  EXPECT_EQ(url->base_path, "/api");
}

TEST(ConsoleUrl, RejectsMalformedInput) {
  for (const char* bad : {
           "",
           "console:8080",
           "ftp://console",
           "http://",
           "http://:8080",
           "http://host:",
           "http://host:0",
           "http://host:65536",
           "http://host:123456",
           "http://host:80x",
           "http://user:pw@host",
           "http://host/path?q=1",
           "http://host#frag",
           "http://ho st",
           "http://host\n",
           "http://[::1",
           "http://[::1]x",
           "http://[zz::1]",
           "http://[]:80",
           "http://host%2f",
       }) {
    EXPECT_FALSE(ParseConsoleUrl(bad).ok()) << "accepted: " << bad;
  }
}

}  // namespace
}  // namespace edge::cloudsync
