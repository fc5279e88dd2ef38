#pragma once

// The console's token file (docs/protocol.md, "Authentication"): one `NODE TOKEN [LABELS]`
// entry per line, `#` starts a comment, the entry named `admin` holds the admin token.
// LABELS binds the node's labels (label_policy.h, "k=v,k2=*").
//
// A TokenTable is immutable after parsing and safe to share between threads.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/status.h"
#include "edge/console/label_policy.h"

namespace edge::console {

// Who a request speaks for.
struct Principal {
  std::string node;  // "admin" for the admin token
  bool admin = false;
};

// The token of an "Authorization: Bearer TOKEN" header value (scheme case-insensitive,
// spaces around ignored); empty if the header has another form.
std::string BearerToken(std::string_view authorization);

class TokenTable {
 public:
  // Parses file contents. `source` names the file in error messages, which have the form
  // "SOURCE:LINE: what is wrong". Rejected: a line without two or three fields, a node name
  // outside [A-Za-z0-9._-] (at most 128 characters), a token with control or non-ASCII
  // characters, a node or token listed twice, labels that do not parse.
  static Result<TokenTable> Parse(std::string_view text, std::string_view source);
  // Reads and parses the file at `path`.
  static Result<TokenTable> Load(const std::string& path);

  // The principal for a bearer token, or nullopt if the token is unknown. The comparison
  // takes time independent of where the tokens differ.
  std::optional<Principal> Authenticate(std::string_view token) const;

  // The label binding of `node`'s entry; nullptr when the entry has no LABELS field (or
  // there is no such node).
  const LabelBinding* LabelBindingOf(std::string_view node) const;

  // Every node that has a token, sorted, without the admin entry.
  std::vector<std::string> Nodes() const;
  bool has_admin() const;
  // Entries whose token is shorter than 16 characters (worth a startup warning).
  std::vector<std::string> NodesWithShortTokens() const;

 private:
  struct Entry {
    std::string node;
    std::string token;
    std::optional<LabelBinding> labels;
  };
  std::vector<Entry> entries_;
};

}  // namespace edge::console
