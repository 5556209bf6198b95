// The parts every compile-fail case shares, so each file holds only its one
// mistake. BLADE_PLUGIN needs a spec; its text does not matter here.
#pragma once

#include <string>

#include <blade/plugin.hpp>

namespace stub {
using blade::sdk::Call;
using blade::sdk::Host;
using blade::sdk::Outcome;
using blade::sdk::Request;
inline constexpr char kSpec[] = "version: v1\nkind: plugin\nitems: []\n";
}  // namespace stub
