#pragma once

// The policy channel's messages and signatures (docs/protocol.md, "Policy channel"), shared
// by the console (which signs) and the agent (which verifies). Pure apart from key files;
// never throws on any input.
//
// A policy version is signed with Ed25519 over SigningInput(): the ASCII line
// "edge-policy/2", the policy name, the version number and the fleet sequence in decimal,
// and the body, joined by "\n". Keys are PEM files as `openssl genpkey -algorithm ed25519` writes
// them (PKCS#8 private key, SubjectPublicKeyInfo public key).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync {

// One signed policy version as the console sends it:
// {"type":"policy","name":..,"version":..,"seq":..,"body":..,"signature":..,"created_ms":..}
struct PolicyDocument {
  std::string name;     // [A-Za-z0-9_.-]{1,64}
  int64_t version = 0;  // >= 1, increasing per name
  // >= 1, increasing across every version of every policy of the console (the fleet
  // sequence): an agent refuses a version whose seq is not above the one it runs. 0 in a
  // decoded document means the message carried none (it cannot verify).
  int64_t seq = 0;
  std::string body;        // the policy text (YAML or JSON, docs/policy.md)
  std::string signature;   // base64 (standard alphabet, padded) of the 64-byte signature
  int64_t created_ms = 0;  // console wall clock when the version was created
};

// What a node reports for a version: {"type":"report","name":..,"version":..,
// "state":"applied"|"rejected","reason":..,"detail":..}. reason is empty when applied,
// else one of: "signature", "stale", "invalid", "store" (docs/protocol.md).
struct PolicyReport {
  std::string name;
  int64_t version = 0;
  std::string state;
  std::string reason;
  std::string detail;  // human-readable, at most 1 KiB
};

// The agent's first message on the channel: {"type":"hello","node":..,"labels":{..},
// "agent_version":..,"applied":{"name":..,"version":..}|null}.
struct PolicyHello {
  std::string node;
  std::map<std::string, std::string> labels;
  std::string agent_version;
  std::optional<std::pair<std::string, int64_t>> applied;  // name, version
};

// "edge-policy/2\n" + name + "\n" + decimal version + "\n" + decimal seq + "\n" + body.
std::string SigningInput(std::string_view name, int64_t version, int64_t seq,
                         std::string_view body);

bool IsValidPolicyName(std::string_view name);

class SigningKey {
 public:
  virtual ~SigningKey() = default;
  // Base64 of the Ed25519 signature of `message`.
  virtual Result<std::string> Sign(std::string_view message) const = 0;
  // The public half as a PEM SubjectPublicKeyInfo.
  virtual std::string PublicKeyPem() const = 0;
};

class VerifyKey {
 public:
  virtual ~VerifyKey() = default;
  // Ok when signature_b64 is a valid Ed25519 signature of `message` by this key.
  virtual Status Verify(std::string_view message, std::string_view signature_b64) const = 0;
};

// Loads a PEM Ed25519 private key; errors name the file and say what is wrong with it.
Result<std::unique_ptr<SigningKey>> LoadSigningKey(const std::string& path);
// Loads a PEM Ed25519 public key (a private key file is refused).
Result<std::unique_ptr<VerifyKey>> LoadVerifyKey(const std::string& path);
Result<std::unique_ptr<VerifyKey>> ParseVerifyKeyPem(std::string_view pem);
// Writes a new key pair: the private key with mode 0600, the public key with 0644. Refuses
// to overwrite an existing file.
Status GenerateKeyPair(const std::string& private_path, const std::string& public_path);

// Signs a document in place (fills `signature`).
Status SignDocument(const SigningKey& key, PolicyDocument& doc);
// Checks doc.signature against the key; a document without a sequence (seq < 1) or without
// a signature never verifies.
Status VerifyDocument(const VerifyKey& key, const PolicyDocument& doc);

std::string EncodePolicyDocument(const PolicyDocument& doc);
std::string EncodePolicyReport(const PolicyReport& report);
std::string EncodePolicyHello(const PolicyHello& hello);

// The decoders check types and bounds (name syntax, version >= 1, body <= 1 MiB) and return
// a clear error; unknown fields are ignored. A policy without "signature" or "seq" decodes
// (with them empty and 0) so that the agent can report it as unsigned; it never verifies.
Result<PolicyDocument> DecodePolicyDocument(std::string_view json);
Result<PolicyReport> DecodePolicyReport(std::string_view json);
Result<PolicyHello> DecodePolicyHello(std::string_view json);
// The "type" field of a channel message ("hello", "policy", "report"), or an error.
Result<std::string> PolicyMessageType(std::string_view json);

// Parses "k=v,k2=v2" (EDGE_AGENT_LABELS). Keys: [A-Za-z0-9_.-/]{1,63}; values:
// [A-Za-z0-9_.-]{0,63}; spaces around items are ignored; an empty text is no labels.
Result<std::map<std::string, std::string>> ParseLabels(std::string_view text);

inline constexpr size_t kMaxPolicyBodyBytes = 1 << 20;

}  // namespace edge::cloudsync
