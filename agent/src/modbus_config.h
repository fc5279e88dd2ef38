#pragma once
// Reads the config file's `modbus:` list (docs/modbus.md) into ModbusDevice values; every
// mistake is reported through `error` at its YAML position, and what was read of a device
// with errors is dropped.

#include <functional>
#include <string>
#include <vector>

#include "edge/agent/modbus.h"
#include "yaml-cpp/yaml.h"

namespace edge::agent::config_internal {

using YamlError = std::function<void(const YAML::Mark&, const std::string&)>;

void ReadModbusSection(const YAML::Node& node, std::vector<ModbusDevice>& devices,
                       const YamlError& error);

}  // namespace edge::agent::config_internal
