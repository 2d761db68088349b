#pragma once
// The one exception type of the suite: its message is meant for the user, one line,
// naming the file and what is wrong. Tools catch it in main() and print
// "ane-<tool>: error: <message>".
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ane {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A command line that contradicts itself or a value out of range: the tool exits with 2.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& message) : Error(message) {}
};

// Builds a message from any streamable parts: throw error(path, ": expected ", n, " bytes").
template <typename... Parts>
Error error(Parts&&... parts) {
    std::ostringstream out;
    (out << ... << std::forward<Parts>(parts));
    return Error(out.str());
}

template <typename... Parts>
UsageError usage_error(Parts&&... parts) {
    std::ostringstream out;
    (out << ... << std::forward<Parts>(parts));
    return UsageError(out.str());
}

// Throws unless cond holds; the message parts are only formatted on failure.
template <typename... Parts>
void require(bool cond, Parts&&... parts) {
    if (!cond) throw error(std::forward<Parts>(parts)...);
}

// Throws a UsageError unless cond holds.
template <typename... Parts>
void require_usage(bool cond, Parts&&... parts) {
    if (!cond) throw usage_error(std::forward<Parts>(parts)...);
}

}  // namespace ane
