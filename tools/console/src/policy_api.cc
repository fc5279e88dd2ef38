#include "edge/console/policy_api.h"

#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <variant>

#include "api_request.h"
#include "edge/cloudsync/policy_message.h"

namespace edge::console {
namespace {

using nlohmann::json;

constexpr std::string_view kPoliciesPrefix = "/v1/policies";

HttpResponse Created(const CreateOutcome& out) {
  if (out.status != 201) return ErrorResponse(out.status, out.error);
  return JsonResponse(201, json{{"name", out.name},
                                {"version", out.version},
                                {"seq", out.seq},
                                {"signature", out.signature},
                                {"rollout", RolloutName(out.rollout)},
                                {"targets", out.targets}});
}

// A JSON object body, or nullopt (malformed).
std::optional<json> ParseObject(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

json OrNull(int64_t version) { return version > 0 ? json(version) : json(nullptr); }

}  // namespace

PolicyApi::PolicyApi(const TokenTable& tokens, PolicyService& service, Log& log,
                     bool trust_hello_labels)
    : tokens_(tokens), service_(service), log_(log), trust_hello_labels_(trust_hello_labels) {}

bool PolicyApi::Owns(std::string_view path) {
  return path == kPoliciesPrefix ||
         (path.starts_with(kPoliciesPrefix) && path.size() > kPoliciesPrefix.size() &&
          path[kPoliciesPrefix.size()] == '/') ||
         path.starts_with("/v1/policy/");
}

HttpResponse PolicyApi::Handle(const HttpRequest& request, std::string_view path) {
  const auto principal = Authenticated(tokens_, request, /*allow_basic=*/false);
  if (path == kPolicyChannelPath) {
    HttpResponse r = ErrorResponse(426, "the policy channel needs a WebSocket upgrade");
    r.headers.emplace_back("Upgrade", "websocket");
    return r;
  }
  if (path == "/v1/policy/poll" || path == "/v1/policy/report") {
    if (request.method != "POST") return MethodNotAllowed("POST");
    if (!principal) return Unauthorized(/*basic_challenge=*/false);
    if (principal->admin) return ErrorResponse(403, "the policy channel needs a node token");
    return path == "/v1/policy/poll" ? Poll(request, principal->node)
                                     : Report(request, principal->node);
  }
  if (!path.starts_with(kPoliciesPrefix)) return ErrorResponse(404, "not found");
  if (!principal) return Unauthorized(/*basic_challenge=*/false);
  if (!principal->admin) return ErrorResponse(403, "policies need the admin token");
  std::string_view rest = path.substr(kPoliciesPrefix.size());
  if (rest.empty() || rest == "/") {
    if (request.method != "GET") return MethodNotAllowed("GET");
    return List();
  }
  rest.remove_prefix(1);
  const size_t slash = rest.find('/');
  const std::string name(rest.substr(0, slash));
  if (!cloudsync::IsValidPolicyName(name)) {
    return ErrorResponse(400, "policy name must be 1 to 64 of [A-Za-z0-9_.-]");
  }
  if (slash != std::string_view::npos) {
    if (rest.substr(slash) != "/rollback") return ErrorResponse(404, "not found");
    if (request.method != "POST") return MethodNotAllowed("POST");
    return Rollback(request, name);
  }
  if (request.method == "PUT") return Put(request, name);
  if (request.method == "GET") return Describe(name);
  return MethodNotAllowed("GET, PUT");
}

HttpResponse PolicyApi::Put(const HttpRequest& request, const std::string& name) {
  const auto j = ParseObject(request.body);
  if (!j) return ErrorResponse(400, "body must be a JSON object");
  PushRequest push;
  const auto body = j->find("body");
  if (body == j->end() || !body->is_string())
    return ErrorResponse(400, "\"body\" must be a string");
  push.body = body->get<std::string>();
  for (const auto& [key, target] :
       {std::pair<const char*, std::string*>{"selector", &push.selector},
        {"canary", &push.canary}}) {
    const auto it = j->find(key);
    if (it == j->end() || it->is_null()) continue;
    if (!it->is_string())
      return ErrorResponse(400, std::string("\"") + key + "\" must be a string");
    *target = it->get<std::string>();
  }
  if (const auto it = j->find("canary_wait_s"); it != j->end() && !it->is_null()) {
    if (!it->is_number_integer()) return ErrorResponse(400, "\"canary_wait_s\" must be an integer");
    push.canary_wait_s = it->get<int64_t>();
  }
  if (const auto it = j->find("skip_validation"); it != j->end() && !it->is_null()) {
    if (!it->is_boolean()) return ErrorResponse(400, "\"skip_validation\" must be true or false");
    push.skip_validation = it->get<bool>();
  }
  return Created(service_.Push(name, push));
}

HttpResponse PolicyApi::Rollback(const HttpRequest& request, const std::string& name) {
  const auto j = ParseObject(request.body);
  if (!j) return ErrorResponse(400, "body must be a JSON object");
  const auto to = j->find("to");
  if (to == j->end() || !to->is_number_integer())
    return ErrorResponse(400, "\"to\" must be an integer");
  return Created(service_.Rollback(name, to->get<int64_t>()));
}

HttpResponse PolicyApi::List() {
  json out = json::array();
  for (const PolicySummary& p : service_.List()) {
    out.push_back(json{{"name", p.name},
                       {"version", p.version},
                       {"selector", p.selector},
                       {"canary", p.canary.empty() ? json(nullptr) : json(p.canary)},
                       {"rollout", RolloutName(p.rollout)},
                       {"created_ms", p.created_ms}});
  }
  return JsonResponse(200, out);
}

HttpResponse PolicyApi::Describe(const std::string& name) {
  const auto view = service_.Describe(name);
  if (!view) return ErrorResponse(404, "no policy named \"" + name + "\"");
  json versions = json::array();
  for (const PolicyVersion& v : view->versions) {
    versions.push_back(json{{"version", v.version},
                            {"created_ms", v.created_ms},
                            {"selector", v.selector},
                            {"canary", v.canary.empty() ? json(nullptr) : json(v.canary)},
                            {"canary_wait_s", v.canary_wait_s},
                            {"rollout", RolloutName(v.rollout)},
                            {"seq", v.seq},
                            {"signature", v.signature}});
  }
  json nodes = json::array();
  for (const NodePolicyView& n : view->nodes) {
    nodes.push_back(json{{"node", n.node},
                         {"labels", n.labels},
                         {"connected", n.connected},
                         {"released_version", OrNull(n.released_version)},
                         {"applied_version", OrNull(n.applied_version)},
                         {"state", n.state},
                         {"reason", n.reason},
                         {"detail", n.detail},
                         {"updated_ms", n.updated_ms}});
  }
  return JsonResponse(200, json{{"name", name}, {"versions", versions}, {"nodes", nodes}});
}

HttpResponse PolicyApi::Poll(const HttpRequest& request, const std::string& node) {
  Result<cloudsync::PolicyHello> hello = cloudsync::DecodePolicyHello(request.body);
  if (!hello) return ErrorResponse(400, hello.error());
  if (hello->node != node) return ErrorResponse(403, "hello node differs from the token's node");
  BindLabels(*hello);
  const auto doc = service_.Poll(*hello);
  if (!doc) {
    HttpResponse r;
    r.status = 204;
    return r;
  }
  HttpResponse r;
  r.body = cloudsync::EncodePolicyDocument(*doc);
  return r;
}

HttpResponse PolicyApi::Report(const HttpRequest& request, const std::string& node) {
  Result<cloudsync::PolicyReport> report = cloudsync::DecodePolicyReport(request.body);
  if (!report) return ErrorResponse(400, report.error());
  service_.Report(node, *report);
  HttpResponse r;
  r.status = 204;
  return r;
}

void PolicyApi::BindLabels(cloudsync::PolicyHello& hello) {
  if (trust_hello_labels_) return;
  static const LabelBinding kNoLabels;
  const LabelBinding* binding = tokens_.LabelBindingOf(hello.node);
  LabelBinding::Outcome bound = (binding != nullptr ? *binding : kNoLabels).Apply(hello.labels);
  hello.labels = std::move(bound.labels);
  std::string refused;
  for (const std::string& claim : bound.refused) {
    if (!refused.empty()) refused += ',';
    refused += claim;
  }
  if (!refused.empty()) ++labels_refused_;
  std::string& last = last_refused_[hello.node];
  if (refused == last) return;
  last = refused;
  if (refused.empty()) return;
  log_.Write(LogLevel::kWarn,
             "policy channel: labels claimed in a hello are not bound to the node's token; "
             "ignored",
             {{"node", hello.node}, {"refused", refused}});
}

std::string PolicyApi::MetricsText() const {
  std::string text = service_.MetricsText();
  text +=
      "# HELP edge_console_policy_labels_refused_total Hellos that claimed labels the node's "
      "token entry does not allow (the claims were ignored)\n";
  text += "# TYPE edge_console_policy_labels_refused_total counter\n";
  text += "edge_console_policy_labels_refused_total " + std::to_string(labels_refused_) + "\n";
  return text;
}

std::optional<HttpResponse> PolicyApi::Admit(const HttpRequest& request, std::string* principal) {
  auto who = Authorize(tokens_, request, /*admin=*/false, "the policy channel needs a node token");
  if (auto* refused = std::get_if<HttpResponse>(&who)) return std::move(*refused);
  *principal = std::get<Principal>(who).node;
  return std::nullopt;
}

void PolicyApi::OnOpen(ChannelPeer& peer, const std::string& principal) {
  channels_[&peer] = Channel{principal, false};
}

void PolicyApi::OnMessage(ChannelPeer& peer, std::string_view text) {
  const auto it = channels_.find(&peer);
  if (it == channels_.end()) return;
  Channel& channel = it->second;
  try {
    if (!channel.hello) {
      Result<cloudsync::PolicyHello> hello = cloudsync::DecodePolicyHello(text);
      if (!hello) {
        log_.Write(LogLevel::kWarn, "policy channel: bad hello",
                   {{"node", channel.node}, {"error", hello.error()}});
        peer.Close(kClosePolicyViolation, "first message must be a valid hello");
        return;
      }
      if (hello->node != channel.node) {
        log_.Write(LogLevel::kWarn, "policy channel: hello node differs from the token's",
                   {{"node", channel.node}, {"hello_node", hello->node}});
        peer.Close(kClosePolicyViolation, "hello node differs from the token's node");
        return;
      }
      channel.hello = true;
      BindLabels(*hello);
      service_.Connect(peer, *hello);
      return;
    }
    Result<std::string> type = cloudsync::PolicyMessageType(text);
    if (type && *type == "report") {
      Result<cloudsync::PolicyReport> report = cloudsync::DecodePolicyReport(text);
      if (report) {
        service_.Report(channel.node, *report);
        return;
      }
      type = report.status();
    }
    // Anything else is ignored (fields and types not listed are ignored by contract).
    log_.Write(LogLevel::kWarn, "policy channel: message ignored",
               {{"node", channel.node}, {"error", type ? "type " + *type : type.error()}});
  } catch (const std::exception& e) {
    log_.Write(LogLevel::kError, "policy channel: message failed",
               {{"node", channel.node}, {"error", e.what()}});
  }
}

void PolicyApi::OnClose(ChannelPeer& peer) {
  service_.Disconnect(peer);
  channels_.erase(&peer);
}

void PolicyApi::OnTick() {
  try {
    service_.Tick();
  } catch (const std::exception& e) {
    log_.Write(LogLevel::kError, "policy tick failed", {{"error", e.what()}});
  }
}

}  // namespace edge::console
