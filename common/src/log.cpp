#include "ane/log.hpp"

#include <cstdio>
#include <mutex>

namespace ane::log {

namespace {
Level g_level = Level::Info;
std::mutex g_mutex;
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

void write(Level, const std::string& line) {
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fputs(line.c_str(), stderr);
    std::fputc('\n', stderr);
}

void warn(const std::string& line) {
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fputs(("warning: " + line + "\n").c_str(), stderr);
}

}  // namespace ane::log
