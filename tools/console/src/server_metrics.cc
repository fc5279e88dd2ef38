#include "edge/console/server_metrics.h"

namespace edge::console {
namespace {

int64_t Value(const std::map<std::string, int64_t>& counts, std::string_view key) {
  const auto it = counts.find(std::string(key));
  return it == counts.end() ? 0 : it->second;
}

}  // namespace

std::string ServerMetrics::Text() const {
  std::string text;
  text +=
      "# HELP edge_console_connections_refused_total Connections closed at accept or before "
      "their request headers were complete, by reason\n";
  text += "# TYPE edge_console_connections_refused_total counter\n";
  for (std::string_view reason :
       {kRefusedSlotsFull, kRefusedPerAddress, kRefusedHeaderTimeout, kRefusedChannelsFull}) {
    text += "edge_console_connections_refused_total{reason=\"" + std::string(reason) + "\"} " +
            std::to_string(Value(connections_refused_, reason)) + "\n";
  }
  text +=
      "# HELP edge_console_requests_refused_total Requests answered from their headers alone, "
      "without reading a body, by reason\n";
  text += "# TYPE edge_console_requests_refused_total counter\n";
  for (std::string_view reason : {kRequestBadFraming, kRequestUnauthenticated, kRequestThrottled}) {
    text += "edge_console_requests_refused_total{reason=\"" + std::string(reason) + "\"} " +
            std::to_string(Value(requests_refused_, reason)) + "\n";
  }
  text +=
      "# HELP edge_console_channels_replaced_total Policy channels closed because a newer "
      "channel of the same node opened\n";
  text += "# TYPE edge_console_channels_replaced_total counter\n";
  text += "edge_console_channels_replaced_total " + std::to_string(channels_replaced_) + "\n";
  text += "# HELP edge_console_open_connections Open connections by pool\n";
  text += "# TYPE edge_console_open_connections gauge\n";
  text += "edge_console_open_connections{pool=\"requests\"} " +
          std::to_string(request_connections_) + "\n";
  text += "edge_console_open_connections{pool=\"channels\"} " + std::to_string(channels_) + "\n";
  return text;
}

}  // namespace edge::console
