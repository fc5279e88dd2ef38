#include "edge/console/server_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace edge::console {
namespace {

TEST(ServerMetrics, TextListsEveryReasonWithItsCountInPrometheusFormat) {
  ServerMetrics metrics;
  metrics.ConnectionRefused(kRefusedPerAddress);
  metrics.ConnectionRefused(kRefusedPerAddress);
  metrics.RequestRefused(kRequestThrottled);
  metrics.ChannelReplaced();
  metrics.SetOpen(3, 2);
  EXPECT_EQ(metrics.Text(),
            "# HELP edge_console_connections_refused_total Connections closed at accept or "
            "before their request headers were complete, by reason\n"
            "# TYPE edge_console_connections_refused_total counter\n"
            "edge_console_connections_refused_total{reason=\"slots_full\"} 0\n"
            "edge_console_connections_refused_total{reason=\"per_address\"} 2\n"
            "edge_console_connections_refused_total{reason=\"header_timeout\"} 0\n"
            "edge_console_connections_refused_total{reason=\"channels_full\"} 0\n"
            "# HELP edge_console_requests_refused_total Requests answered from their headers "
            "alone, without reading a body, by reason\n"
            "# TYPE edge_console_requests_refused_total counter\n"
            "edge_console_requests_refused_total{reason=\"bad_framing\"} 0\n"
            "edge_console_requests_refused_total{reason=\"unauthenticated\"} 0\n"
            "edge_console_requests_refused_total{reason=\"auth_throttled\"} 1\n"
            "# HELP edge_console_channels_replaced_total Policy channels closed because a newer "
            "channel of the same node opened\n"
            "# TYPE edge_console_channels_replaced_total counter\n"
            "edge_console_channels_replaced_total 1\n"
            "# HELP edge_console_open_connections Open connections by pool\n"
            "# TYPE edge_console_open_connections gauge\n"
            "edge_console_open_connections{pool=\"requests\"} 3\n"
            "edge_console_open_connections{pool=\"channels\"} 2\n");
}

}  // namespace
}  // namespace edge::console
