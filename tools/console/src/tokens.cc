#include "edge/console/tokens.h"

#include <algorithm>
#include <string>
#include <vector>

#include "edge/common/files.h"

namespace edge::console {
namespace {

constexpr size_t kMaxNodeBytes = 128;
constexpr size_t kShortTokenBytes = 16;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

bool ValidNode(std::string_view node) {
  if (node.empty() || node.size() > kMaxNodeBytes) return false;
  return std::all_of(node.begin(), node.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool ValidToken(std::string_view token) {
  return std::all_of(token.begin(), token.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

// Compares without an early exit, so the time taken does not reveal how long a matching
// prefix of a guessed token was.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(
        diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

}  // namespace

std::string BearerToken(std::string_view authorization) {
  const auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  authorization = trim(authorization);
  const size_t space = authorization.find(' ');
  if (space != 6) return {};
  for (size_t i = 0; i < 6; ++i) {
    const char c = static_cast<char>(authorization[i] | 0x20);
    if (c != "bearer"[i]) return {};
  }
  return std::string(trim(authorization.substr(space + 1)));
}

Result<TokenTable> TokenTable::Parse(std::string_view text, std::string_view source) {
  TokenTable table;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const auto fields = SplitFields(line);
    if (fields.empty()) continue;
    const auto fail = [&](const std::string& what) {
      return Status::Error(std::string(source) + ":" + std::to_string(line_no) + ": " + what);
    };
    if (fields.size() != 2 && fields.size() != 3) {
      return fail("expected 'NODE TOKEN [LABELS]', found " + std::to_string(fields.size()) +
                  " field(s)");
    }
    const std::string_view node = fields[0];
    const std::string_view token = fields[1];
    if (!ValidNode(node)) {
      return fail("node name must be 1-128 characters of [A-Za-z0-9._-]");
    }
    if (!ValidToken(token)) return fail("token contains a control or non-ASCII character");
    if (Status s = table.CheckUnique(node, token); !s) return fail(s.message());
    std::optional<LabelBinding> labels;
    if (fields.size() == 3) {
      Result<LabelBinding> parsed = LabelBinding::Parse(fields[2]);
      if (!parsed) return fail("labels: " + parsed.error());
      labels = std::move(*parsed);
    }
    table.Add(Entry{std::string(node), std::string(token), std::move(labels)});
  }
  return table;
}

Status TokenTable::CheckUnique(std::string_view node, std::string_view token) const {
  if (by_node_.contains(node)) {
    return Status::InvalidArgument("node '" + std::string(node) + "' listed twice");
  }
  for (auto [it, end] = by_token_hash_.equal_range(StringHash{}(token)); it != end; ++it) {
    const Entry& held = entries_[it->second];
    if (held.token == token) {
      return Status::InvalidArgument("token already used by node '" + held.node + "'");
    }
  }
  return Status::Ok();
}

void TokenTable::Add(Entry entry) {
  by_node_.emplace(entry.node, entries_.size());
  by_token_hash_.emplace(StringHash{}(entry.token), entries_.size());
  entries_.push_back(std::move(entry));
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  Result<std::string> contents = ReadFile(path, kNoFileSizeLimit);
  if (contents.ok()) return Parse(*contents, path);
  return Status::WithCode(contents.status().code(), path + ": token file " + contents.error());
}

const LabelBinding* TokenTable::LabelBindingOf(std::string_view node) const {
  const auto it = by_node_.find(node);
  if (it == by_node_.end()) return nullptr;
  const Entry& e = entries_[it->second];
  return e.labels ? &*e.labels : nullptr;
}

std::optional<Principal> TokenTable::Authenticate(std::string_view token) const {
  std::optional<Principal> found;
  if (token.empty()) return found;
  for (auto [it, end] = by_token_hash_.equal_range(StringHash{}(token)); it != end; ++it) {
    const Entry& e = entries_[it->second];
    if (ConstantTimeEquals(e.token, token)) found = Principal{e.node, e.node == "admin"};
  }
  return found;
}

std::vector<std::string> TokenTable::Nodes() const {
  std::vector<std::string> nodes;
  for (const Entry& e : entries_) {
    if (e.node != "admin") nodes.push_back(e.node);
  }
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

bool TokenTable::has_admin() const { return by_node_.contains("admin"); }

std::vector<std::string> TokenTable::NodesWithShortTokens() const {
  std::vector<std::string> nodes;
  for (const Entry& e : entries_) {
    if (e.token.size() < kShortTokenBytes) nodes.push_back(e.node);
  }
  return nodes;
}

}  // namespace edge::console
