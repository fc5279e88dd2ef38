#include "broker_url.h"

namespace edge::agent {

Result<BrokerUrl> ParseBrokerUrl(std::string_view text, UrlPart* refused) {
  static constexpr UrlScheme kSchemes[] = {
      {"tcp", 1883}, {"mqtt", 1883}, {"ssl", 8883}, {"mqtts", 8883}};
  Result<Url> url = ParseUrl(text, kSchemes, "broker URL", /*allow_port_zero=*/false, refused);
  if (!url.ok()) return url.status();
  if (!url->path.empty() && url->path != "/") {
    if (refused != nullptr) *refused = UrlPart::kPath;
    return Status::InvalidArgument("broker URL must not have a path");
  }
  BrokerUrl out;
  out.tls = url->scheme == "ssl" || url->scheme == "mqtts";
  out.url = std::move(*url);
  return out;
}

}  // namespace edge::agent
