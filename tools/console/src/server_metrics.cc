#include "edge/console/server_metrics.h"

#include <initializer_list>
#include <string>
#include <string_view>

namespace edge::console {
namespace {

int64_t Value(const std::map<std::string, int64_t>& counts, std::string_view key) {
  const auto it = counts.find(std::string(key));
  return it == counts.end() ? 0 : it->second;
}

// A counter family labelled by reason: HELP, TYPE and one sample per reason (0 if not
// counted yet), in the order given.
void AppendByReason(std::string& text, std::string_view name, std::string_view help,
                    std::initializer_list<std::string_view> reasons,
                    const std::map<std::string, int64_t>& counts) {
  const std::string family(name);
  text += "# HELP " + family + " " + std::string(help) + "\n";
  text += "# TYPE " + family + " counter\n";
  for (std::string_view reason : reasons) {
    text += family + "{reason=\"" + std::string(reason) + "\"} " +
            std::to_string(Value(counts, reason)) + "\n";
  }
}

}  // namespace

std::string ServerMetrics::Text() const {
  std::string text;
  AppendByReason(
      text, "edge_console_connections_refused_total",
      "Connections closed at accept or before their request headers were complete, "
      "by reason",
      {kRefusedSlotsFull, kRefusedPerAddress, kRefusedHeaderTimeout, kRefusedChannelsFull},
      connections_refused_);
  AppendByReason(text, "edge_console_requests_refused_total",
                 "Requests answered from their headers alone, without reading a body, by reason",
                 {kRequestBadFraming, kRequestUnauthenticated, kRequestThrottled},
                 requests_refused_);
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
