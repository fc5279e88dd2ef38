#pragma once

// HTTP and WebSocket glue of the policy channel (docs/protocol.md, "Policy channel"):
// the admin API (/v1/policies...), the polling fallback (/v1/policy/poll, /v1/policy/report)
// and the channel handler for GET /v1/policy/channel. Decodes and checks everything that
// comes from the network and hands values to PolicyService.
//
// Not thread-safe: runs on the server's event-loop thread. Borrows everything it is given.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "edge/console/http.h"
#include "edge/console/log.h"
#include "edge/console/policy_service.h"
#include "edge/console/tokens.h"

namespace edge::console {

inline constexpr std::string_view kPolicyChannelPath = "/v1/policy/channel";
// Close codes used on the channel (RFC 6455).
inline constexpr uint16_t kClosePolicyViolation = 1008;

class PolicyApi final : public ChannelHandler {
 public:
  // `trust_hello_labels`: take the labels a node claims in its hello as they are (the
  // behaviour before labels were bound in the token file); otherwise only what the
  // node's token entry allows (label_policy.h), refusals logged and counted.
  PolicyApi(const TokenTable& tokens, PolicyService& service, Log& log,
            bool trust_hello_labels = false);

  // True for the paths this class answers.
  static bool Owns(std::string_view path);
  // Answers a request for a path Owns() accepted. Never throws.
  HttpResponse Handle(const HttpRequest& request, std::string_view path);
  std::string MetricsText() const;

  std::optional<HttpResponse> Admit(const HttpRequest& request, std::string* principal) override;
  void OnOpen(ChannelPeer& peer, const std::string& principal) override;
  void OnMessage(ChannelPeer& peer, std::string_view text) override;
  void OnClose(ChannelPeer& peer) override;
  void OnTick() override;

 private:
  struct Channel {
    std::string node;  // the token's node
    bool hello = false;
  };

  HttpResponse Put(const HttpRequest& request, const std::string& name);
  HttpResponse Rollback(const HttpRequest& request, const std::string& name);
  HttpResponse List();
  HttpResponse Describe(const std::string& name);
  HttpResponse Poll(const HttpRequest& request, const std::string& node);
  HttpResponse Report(const HttpRequest& request, const std::string& node);
  // Replaces the claimed labels by those the node's token entry allows.
  void BindLabels(cloudsync::PolicyHello& hello);

  const TokenTable& tokens_;
  PolicyService& service_;
  Log& log_;
  std::map<ChannelPeer*, Channel> channels_;
  bool trust_hello_labels_;
  int64_t labels_refused_ = 0;  // hellos with at least one claim refused
  // The refused claims last logged per node (nodes come from the token file: bounded), so
  // that a node polling every few seconds is logged once per change.
  std::map<std::string, std::string> last_refused_;
};

}  // namespace edge::console
