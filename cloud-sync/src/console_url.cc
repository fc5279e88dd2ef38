#include "edge/cloudsync/console_url.h"

#include <algorithm>
#include <cctype>

namespace edge::cloudsync {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string ConsoleUrl::HostHeader() const {
  std::string out;
  if (host.find(':') != std::string::npos) {
    out.append("[").append(host).append("]");
  } else {
    out = host;
  }
  const uint16_t default_port = tls ? 443 : 80;
  if (port != default_port) out.append(":").append(std::to_string(port));
  return out;
}

Result<ConsoleUrl> ParseConsoleUrl(std::string_view url) {
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return Status::Error("console URL contains whitespace or control characters");
    }
  }
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Status::Error("console URL '" + std::string(url) + "' has no scheme (want http://)");
  }
  ConsoleUrl out;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (EqualsIgnoreCase(scheme, "http")) {
    out.tls = false;
  } else if (EqualsIgnoreCase(scheme, "https")) {
    out.tls = true;
  } else {
    return Status::Error("console URL scheme '" + std::string(scheme) +
                         "' is not supported (want http:// or https://)");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Status::Error("console URL must not have a query or fragment");
  }
  const size_t path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path =
      path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) {
    return Status::Error("console URL must not contain user info; use token_file");
  }

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::Error("console URL: unclosed '['");
    out.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::Error("console URL: junk after IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return Status::Error("console URL: empty port");
    }
    if (out.host.empty() || !std::all_of(out.host.begin(), out.host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return Status::Error("console URL: bad IPv6 address");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Status::Error("console URL: empty port");
    }
    if (out.host.empty()) return Status::Error("console URL has no host");
    if (!std::all_of(out.host.begin(), out.host.end(), IsHostNameChar)) {
      return Status::Error("console URL: bad host name '" + out.host + "'");
    }
  }

  if (port_text.empty()) {
    out.port = out.tls ? 443 : 80;
  } else {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return Status::Error("console URL: bad port '" + std::string(port_text) + "'");
    }
    const int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) {
      return Status::Error("console URL: port " + std::to_string(port) + " out of range");
    }
    out.port = static_cast<uint16_t>(port);
  }

  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);
  return out;
}

}  // namespace edge::cloudsync
