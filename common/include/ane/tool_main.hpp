#pragma once
// The common ending of every tool's main(): run the work, turn any exception into one line
// "ane-<tool>: error: <message>" on stderr and exit code 1 (a UsageError: "ane-<tool>: usage
// error: <message>" and exit code 2).
#include <functional>

namespace ane {

int run_tool(const char* tool, const std::function<int()>& body);

}  // namespace ane
