#pragma once

// Request and reply helpers shared by the console API's handlers (private to src/): JSON and
// error replies, the 401 and 405 replies, and reading the token of an Authorization header.
// Pure.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "edge/console/http.h"
#include "edge/console/tokens.h"

namespace edge::console {

// `body` serialized compactly (invalid UTF-8 replaced), with `status`.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// {"error": message} with `status`.
HttpResponse ErrorResponse(int status, std::string_view message);

// 401 with a Basic (`basic_challenge`, for the browser dashboard) or Bearer challenge.
HttpResponse Unauthorized(bool basic_challenge);

// 405 with an Allow header.
HttpResponse MethodNotAllowed(std::string_view allow);

// The token from "Bearer TOKEN", or with `allow_basic` from the password of
// "Basic base64(USER:TOKEN)" (what a browser sends for the dashboard); "" if there is none.
std::string ExtractToken(std::string_view authorization, bool allow_basic);

// Who `request`'s token speaks for: the principal the head check found
// (HttpRequest::principal), else a lookup of its token (ExtractToken); nullopt for none.
std::optional<Principal> Authenticated(const TokenTable& tokens, const HttpRequest& request,
                                       bool allow_basic);

// Who `request`'s token speaks for (Authenticated), when its role is the one the route needs
// (`admin`); else the reply refusing it: 401 without a known token (a Basic challenge and Basic
// credentials accepted with `basic`, for the dashboard), 403 with `forbidden` for the other role.
std::variant<Principal, HttpResponse> Authorize(const TokenTable& tokens,
                                                const HttpRequest& request, bool admin,
                                                std::string_view forbidden, bool basic = false);

// For a route only the admin token may use: nullopt when `request`'s token is the admin's,
// else the reply refusing it, as Authorize gives it.
std::optional<HttpResponse> RefuseUnlessAdmin(const TokenTable& tokens, const HttpRequest& request,
                                              std::string_view forbidden, bool basic = false);

// Lenient base64 as the console has always read Basic credentials: the text before the
// first '=' (the rest is ignored), padding optional, a last character that completes no
// byte dropped; nullopt for any character outside the standard alphabet.
std::optional<std::string> LenientBase64Decode(std::string_view text);

}  // namespace edge::console
