#pragma once

// A hash for unordered containers keyed by std::string that can be searched with a
// std::string_view (or a string literal) without building a std::string: use it with
// std::equal_to<> as the key-equal.

#include <cstddef>
#include <functional>
#include <string_view>

namespace edge {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace edge
