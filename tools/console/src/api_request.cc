#include "api_request.h"

#include <vector>

#include "edge/cloudsync/base64.h"
#include "edge/common/strings.h"
#include "edge/console/tokens.h"

namespace edge::console {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(int status, std::string_view message) {
  return JsonResponse(status, json{{"error", message}});
}

HttpResponse Unauthorized(bool basic_challenge) {
  HttpResponse r = ErrorResponse(401, "missing or unknown token");
  r.headers.emplace_back("WWW-Authenticate", basic_challenge ? R"(Basic realm="edge-console")"
                                                             : R"(Bearer realm="edge-console")");
  return r;
}

HttpResponse MethodNotAllowed(std::string_view allow) {
  HttpResponse r = ErrorResponse(405, "method not allowed");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

std::optional<std::string> LenientBase64Decode(std::string_view text) {
  text = text.substr(0, text.find('='));
  if (text.size() % 4 == 1) {
    // Six bits complete no byte: the character is checked, then dropped.
    const char c = text.back();
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '+' && c != '/') return std::nullopt;
    text.remove_suffix(1);
  }
  if (text.empty()) return std::string();
  // The shared decoder is strict: give it the padding the text left out.
  std::string padded(text);
  padded.append((4 - padded.size() % 4) % 4, '=');
  const std::optional<std::vector<unsigned char>> bytes =
      cloudsync::Base64Decode(padded, padded.size());
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::string ExtractToken(std::string_view authorization, bool allow_basic) {
  if (std::string bearer = BearerToken(authorization); !bearer.empty()) return bearer;
  authorization = TrimBlanks(authorization);
  const size_t space = authorization.find(' ');
  if (space == std::string_view::npos) return {};
  const std::string_view scheme = authorization.substr(0, space);
  const std::string_view credentials = TrimBlanks(authorization.substr(space + 1));
  if (allow_basic && IEquals(scheme, "Basic")) {
    const auto decoded = LenientBase64Decode(credentials);
    if (!decoded) return {};
    const size_t colon = decoded->find(':');
    return colon == std::string::npos ? std::string() : decoded->substr(colon + 1);
  }
  return {};
}

std::optional<Principal> Authenticated(const TokenTable& tokens, const HttpRequest& request,
                                       bool allow_basic) {
  if (request.principal) return request.principal;
  return tokens.Authenticate(ExtractToken(request.authorization, allow_basic));
}

std::variant<Principal, HttpResponse> Authorize(const TokenTable& tokens,
                                                const HttpRequest& request, bool admin,
                                                std::string_view forbidden, bool basic) {
  std::optional<Principal> principal = Authenticated(tokens, request, basic);
  if (!principal) return Unauthorized(basic);
  if (principal->admin != admin) return ErrorResponse(403, forbidden);
  return std::move(*principal);
}

std::optional<HttpResponse> RefuseUnlessAdmin(const TokenTable& tokens, const HttpRequest& request,
                                              std::string_view forbidden, bool basic) {
  auto auth = Authorize(tokens, request, /*admin=*/true, forbidden, basic);
  if (auto* refusal = std::get_if<HttpResponse>(&auth)) return std::move(*refusal);
  return std::nullopt;
}

}  // namespace edge::console
