#pragma once

// Who a request speaks for, as its token says (tokens.h). A value type.

#include <string>

namespace edge::console {

struct Principal {
  std::string node;  // "admin" for the admin token
  bool admin = false;
};

}  // namespace edge::console
