#include "edge/common/url.h"

#include <gtest/gtest.h>

namespace edge {
namespace {

constexpr UrlScheme kWeb[] = {{"http", 80}, {"https", 443}};

TEST(Url, NameHostWithPortAndPath) {
  auto url = ParseUrl("http://console.local:8080/api/", kWeb, "URL");
  ASSERT_TRUE(url.ok()) << url.error();
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "console.local");
  EXPECT_EQ(url->port, 8080);
  EXPECT_TRUE(url->port_written);
  EXPECT_EQ(url->path, "/api/");
  EXPECT_EQ(url->HostPort(), "console.local:8080");
}

TEST(Url, SchemeIsCaseInsensitiveAndPortDefaults) {
  auto url = ParseUrl("HTTPS://10.0.0.5", kWeb, "URL");
  ASSERT_TRUE(url.ok()) << url.error();
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->port, 443);
  EXPECT_FALSE(url->port_written);
  EXPECT_EQ(url->path, "");
}

TEST(Url, Ipv6LiteralWithoutBrackets) {
  auto url = ParseUrl("http://[::1]:7000", kWeb, "URL");
  ASSERT_TRUE(url.ok()) << url.error();
  EXPECT_EQ(url->host, "::1");
  EXPECT_TRUE(url->IsIpv6());
  EXPECT_EQ(url->HostPort(), "[::1]:7000");
}

TEST(Url, PortZeroOnlyWhenAllowed) {
  EXPECT_FALSE(ParseUrl("http://h:0", kWeb, "URL").ok());
  EXPECT_TRUE(ParseUrl("http://h:0", kWeb, "URL", /*allow_port_zero=*/true).ok());
}

TEST(Url, ErrorsNameTheUrl) {
  EXPECT_EQ(ParseUrl("http://", kWeb, "console URL").error(), "console URL has no host");
  EXPECT_EQ(ParseUrl("ftp://h", kWeb, "console URL").error(),
            "console URL scheme 'ftp' is not supported (want http:// or https://)");
  EXPECT_EQ(ParseUrl("h:80", kWeb, "console URL").error(),
            "console URL 'h:80' has no scheme (want http://)");
  EXPECT_EQ(ParseUrl("http://h:65536", kWeb, "console URL").error(),
            "console URL: port 65536 out of range");
  EXPECT_EQ(ParseUrl("http://h:123456", kWeb, "console URL").error(),
            "console URL: bad port '123456'");
  EXPECT_EQ(ParseUrl("http://u@h", kWeb, "console URL").error(),
            "console URL must not contain user info");
}

TEST(Url, SaysWhichPartItRefused) {
  const struct {
    const char* text;
    UrlPart part;
  } cases[] = {
      {"http://h t", UrlPart::kText},      {"h:80", UrlPart::kScheme},
      {"ftp://h", UrlPart::kScheme},       {"http://u@h", UrlPart::kUserInfo},
      {"http://h/p?q", UrlPart::kQuery},   {"http://h#f", UrlPart::kQuery},
      {"http://:80", UrlPart::kHost},      {"http://h!x", UrlPart::kHost},
      {"http://h:", UrlPart::kPort},       {"http://h:65536", UrlPart::kPort},
      {"http://h:123456", UrlPart::kPort}, {"http://h:0", UrlPart::kPort},
      {"http://h:80x", UrlPart::kPath},    {"http://h:80/", UrlPart::kNone},
  };
  for (const auto& c : cases) {
    UrlPart refused = UrlPart::kText;
    const Result<Url> url = ParseUrl(c.text, kWeb, "URL", /*allow_port_zero=*/false, &refused);
    EXPECT_EQ(url.ok(), c.part == UrlPart::kNone) << c.text;
    EXPECT_EQ(refused, c.part) << c.text;
  }
}

TEST(Url, RejectsMalformedInput) {
  for (const char* bad : {"", "http://:80", "http://h:", "http://h:8x", "http://h/p?q",
                          "http://h#f", "http://h t", "http://h\n", "http://[::1", "http://[::1]x",
                          "http://[zz::1]", "http://[v1.x]", "http://h%41"}) {
    EXPECT_FALSE(ParseUrl(bad, kWeb, "URL").ok()) << "accepted: " << bad;
  }
}

}  // namespace
}  // namespace edge
