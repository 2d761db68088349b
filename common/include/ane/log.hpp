#pragma once
// The only way common/ talks to the terminal: messages to stderr, filtered by a level.
#include <sstream>
#include <string>

namespace ane::log {

enum class Level { Quiet = 0, Info = 1, Debug = 2 };
void set_level(Level level);
Level level();

void write(Level level, const std::string& line);

template <typename... Parts>
void info(Parts&&... parts) {
    if (level() < Level::Info) return;
    std::ostringstream out;
    (out << ... << parts);
    write(Level::Info, out.str());
}

template <typename... Parts>
void debug(Parts&&... parts) {
    if (level() < Level::Debug) return;
    std::ostringstream out;
    (out << ... << parts);
    write(Level::Debug, out.str());
}

// A warning is always shown, whatever the level.
void warn(const std::string& line);

}  // namespace ane::log
