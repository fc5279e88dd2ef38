#include "edge/console/auth_throttle.h"

#include <gtest/gtest.h>

#include <string>

namespace edge::console {
namespace {

AuthThrottleOptions Options(size_t max_failures, int64_t window_ms, size_t max_addresses) {
  AuthThrottleOptions o;
  o.max_failures = max_failures;
  o.window = std::chrono::milliseconds(window_ms);
  o.max_addresses = max_addresses;
  return o;
}

TEST(AuthThrottle, BlocksAnAddressAfterTheLimitUntilItsWindowEnds) {
  AuthThrottle throttle(Options(3, 60'000, 16));
  for (int i = 0; i < 2; ++i) throttle.RecordFailure("10.0.0.1", 1'000 + i);
  EXPECT_EQ(throttle.BlockedForMs("10.0.0.1", 2'000), 0);
  throttle.RecordFailure("10.0.0.1", 2'000);
  EXPECT_EQ(throttle.BlockedForMs("10.0.0.1", 2'000), 59'000);
  EXPECT_EQ(throttle.BlockedForMs("10.0.0.2", 2'000), 0);
  EXPECT_EQ(throttle.BlockedForMs("10.0.0.1", 61'000), 0);
  EXPECT_EQ(throttle.tracked(), 0u);
}

TEST(AuthThrottle, FailuresInAnOldWindowDoNotCount) {
  AuthThrottle throttle(Options(2, 1'000, 16));
  throttle.RecordFailure("a", 0);
  throttle.RecordFailure("a", 1'500);
  EXPECT_EQ(throttle.BlockedForMs("a", 1'600), 0);
  throttle.RecordFailure("a", 1'700);
  EXPECT_EQ(throttle.BlockedForMs("a", 1'700), 800);
}

TEST(AuthThrottle, TableStaysWithinItsBoundForgettingTheOldestWindow) {
  AuthThrottle throttle(Options(1, 60'000, 4));
  for (int i = 0; i < 100; ++i) throttle.RecordFailure("addr-" + std::to_string(i), i);
  EXPECT_EQ(throttle.tracked(), 4u);
  EXPECT_GT(throttle.BlockedForMs("addr-99", 100), 0);
  EXPECT_EQ(throttle.BlockedForMs("addr-0", 100), 0);
}

TEST(AuthThrottle, ZeroFailuresMeansNoThrottling) {
  AuthThrottle throttle(Options(0, 60'000, 4));
  for (int i = 0; i < 10; ++i) throttle.RecordFailure("a", i);
  EXPECT_EQ(throttle.BlockedForMs("a", 10), 0);
  EXPECT_EQ(throttle.tracked(), 0u);
}

TEST(ClientKey, KeepsIpv4AndMapsIpv6ToItsSlash64) {
  EXPECT_EQ(ClientKey("127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(ClientKey("::ffff:10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(ClientKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientKey("2001:db8:1:2::1"), ClientKey("2001:db8:1:2:ffff::9"));
}

}  // namespace
}  // namespace edge::console

namespace edge::console {
namespace {

TEST(ForwardedClientKey, TakesTheLastEntryTheProxyAppended) {
  EXPECT_EQ(ForwardedClientKey("1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(ForwardedClientKey("spoofed, 10.0.0.9 , 192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(ForwardedClientKey("2001:db8::1"), "2001:db8::/64");
  EXPECT_FALSE(ForwardedClientKey("").has_value());
  EXPECT_FALSE(ForwardedClientKey("1.2.3.4, unknown").has_value());
  EXPECT_FALSE(ForwardedClientKey("1.2.3.4:5678").has_value());
}

}  // namespace
}  // namespace edge::console

namespace edge::console {
namespace {

TEST(IpRange, MatchesAddressesInsideItsPrefixOnly) {
  const auto pods = ParseIpRange("10.42.0.0/16");
  ASSERT_TRUE(pods.has_value());
  EXPECT_TRUE(InRange(*pods, "10.42.3.7"));
  EXPECT_TRUE(InRange(*pods, "::ffff:10.42.0.1"));
  EXPECT_FALSE(InRange(*pods, "10.43.0.1"));
  EXPECT_FALSE(InRange(*pods, "fd00::1"));
  const auto one = ParseIpRange("127.0.5.1");
  ASSERT_TRUE(one.has_value());
  EXPECT_TRUE(InRange(*one, "127.0.5.1"));
  EXPECT_FALSE(InRange(*one, "127.0.5.2"));
  const auto v6 = ParseIpRange("fd00::/8");
  ASSERT_TRUE(v6.has_value());
  EXPECT_TRUE(InRange(*v6, "fd12:3456::1"));
  EXPECT_FALSE(InRange(*v6, "fe80::1"));
  for (const char* bad : {"", "nope", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129"}) {
    EXPECT_FALSE(ParseIpRange(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace edge::console
