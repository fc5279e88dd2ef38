#include "edge/common/url.h"

// Boost.URL is used header-only: its sources are compiled here, in this one translation unit,
// so that the build needs no libboost_url (not part of the base Boost package on Debian 12).
#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/src.hpp>  // NOLINT(build/include): Boost.URL's sources, compiled once here
#include <boost/url/url_view.hpp>

#include "edge/common/strings.h"

namespace edge {
namespace {

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool IsIpv6Char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

}  // namespace

std::string Url::BracketedHost() const { return IsIpv6() ? "[" + host + "]" : host; }

std::string Url::HostPort() const { return BracketedHost() + ":" + std::to_string(port); }

Result<Url> ParseUrl(std::string_view text, std::span<const UrlScheme> schemes,
                     std::string_view what, bool allow_port_zero, UrlPart* refused) {
  UrlPart ignored = UrlPart::kNone;
  UrlPart& part = refused != nullptr ? *refused : ignored;
  part = UrlPart::kNone;
  // Records the part at fault and gives the error.
  const auto fail = [&part](UrlPart at, std::string message) {
    part = at;
    return Status::InvalidArgument(std::move(message));
  };
  const std::string name(what);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return fail(UrlPart::kText, name + " contains whitespace or control characters");
    }
  }
  std::string want;  // "http:// or https://"
  for (const UrlScheme& s : schemes) {
    want += (want.empty() ? "" : " or ") + std::string(s.name) + "://";
  }
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    const std::string first = !schemes.empty() ? std::string(schemes.front().name) : "";
    return fail(UrlPart::kScheme,
                name + " '" + std::string(text) + "' has no scheme (want " + first + "://)");
  }
  Url out;
  const std::string_view scheme = text.substr(0, scheme_end);
  const UrlScheme* match = nullptr;
  for (const UrlScheme& s : schemes) {
    if (IEquals(scheme, s.name)) match = &s;
  }
  if (match == nullptr) {
    return fail(UrlPart::kScheme, name + " scheme '" + std::string(scheme) +
                                      "' is not supported (want " + want + ")");
  }
  out.scheme = std::string(match->name);

  const auto parsed = boost::urls::parse_uri(text);
  if (!parsed) {
    return fail(UrlPart::kText,
                name + " '" + std::string(text) + "' is not a URL: " + parsed.error().message());
  }
  const boost::urls::url_view& u = *parsed;
  if (u.has_query() || u.has_fragment()) {
    return fail(UrlPart::kQuery, name + " must not have a query or fragment");
  }
  if (u.has_userinfo()) return fail(UrlPart::kUserInfo, name + " must not contain user info");

  const std::string_view host = u.encoded_host_address();
  switch (u.host_type()) {
    case boost::urls::host_type::ipv6:
      if (host.empty() || !std::all_of(host.begin(), host.end(), IsIpv6Char)) {
        return fail(UrlPart::kHost, name + ": bad IPv6 address");
      }
      break;
    case boost::urls::host_type::ipvfuture:
      return fail(UrlPart::kHost, name + ": bad IPv6 address");
    default:
      if (host.empty()) return fail(UrlPart::kHost, name + " has no host");
      if (!std::all_of(host.begin(), host.end(), IsHostNameChar)) {
        return fail(UrlPart::kHost, name + ": bad host name '" + std::string(host) + "'");
      }
  }
  out.host = std::string(host);

  out.port = match->default_port;
  if (u.has_port()) {
    const std::string_view port = u.port();
    if (port.empty()) return fail(UrlPart::kPort, name + ": empty port");
    if (port.size() > 5) {
      return fail(UrlPart::kPort, name + ": bad port '" + std::string(port) + "'");
    }
    const int value = std::stoi(std::string(port));  // 1 to 5 digits: Boost.URL checked them
    if (value > 65535 || (value == 0 && !allow_port_zero)) {
      return fail(UrlPart::kPort, name + ": port " + std::to_string(value) + " out of range");
    }
    out.port = static_cast<uint16_t>(value);
    out.port_written = true;
  }
  out.path = std::string(u.encoded_path());
  // Boost.URL 1.81 takes "http://h:80x" as port 80 and path "x": RFC 3986 wants a '/' there.
  if (!out.path.empty() && out.path.front() != '/') {
    return fail(UrlPart::kPath, name + ": junk after the host or port ('" + out.path + "')");
  }
  return out;
}

}  // namespace edge
