#pragma once

// One sensor reading as the rules engine sees it, after decoding.

#include <cstdint>
#include <string>

namespace edge::rules {

struct Reading {
  std::string sensor;  // sensor id: the MQTT topic, plus the JSON path for object payloads
  int64_t ts_ms = 0;   // event time, milliseconds since the Unix epoch
  double value = 0;
};

}  // namespace edge::rules
