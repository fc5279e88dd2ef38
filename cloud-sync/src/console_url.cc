#include "edge/cloudsync/console_url.h"

#include "edge/common/url.h"

namespace edge::cloudsync {

std::string ConsoleUrl::HostHeader() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const uint16_t default_port = tls ? 443 : 80;
  if (port != default_port) out.append(":").append(std::to_string(port));
  return out;
}

Result<ConsoleUrl> ParseConsoleUrl(std::string_view url) {
  static constexpr UrlScheme kSchemes[] = {{"http", 80}, {"https", 443}};
  UrlPart refused = UrlPart::kNone;
  Result<Url> parsed = ParseUrl(url, kSchemes, "console URL", /*allow_port_zero=*/false, &refused);
  if (!parsed.ok()) {
    if (refused == UrlPart::kUserInfo) {
      return Status::Error(parsed.error() + "; use token_file");
    }
    return Status::Error(parsed.error());
  }
  ConsoleUrl out;
  out.tls = parsed->scheme == "https";
  out.host = std::move(parsed->host);
  out.port = parsed->port;
  std::string_view path = parsed->path;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);
  return out;
}

}  // namespace edge::cloudsync
