#pragma once

// The console's token file (docs/protocol.md, "Authentication"): one `NODE TOKEN [LABELS]`
// entry per line, `#` starts a comment, the entry named `admin` holds the admin token.
// LABELS binds the node's labels (label_policy.h, "k=v,k2=*").
//
// A TokenTable is immutable after parsing and safe to share between threads.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edge/common/status.h"
#include "edge/common/string_hash.h"
#include "edge/console/label_policy.h"
#include "edge/console/principal.h"

namespace edge::console {

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

  // The principal for a bearer token, or nullopt if the token is unknown. One hash lookup:
  // only an entry whose token hashes alike is compared, and that comparison takes time
  // independent of where the tokens differ.
  std::optional<Principal> Authenticate(std::string_view token) const;

  // The label binding of `node`'s entry; nullptr when the entry has no LABELS field (or
  // there is no such node). One hash lookup.
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
  // An error naming the entry it clashes with if `node` or `token` is taken already.
  Status CheckUnique(std::string_view node, std::string_view token) const;
  void Add(Entry entry);

  std::vector<Entry> entries_;  // in file order
  // Index into entries_ by node name.
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> by_node_;
  // Indexes into entries_ by the hash of their token (not the token itself, so that finding
  // an entry never compares a guess with a token byte by byte).
  std::unordered_multimap<size_t, size_t> by_token_hash_;
};

}  // namespace edge::console
