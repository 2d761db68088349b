#include "ane/progress.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include "ane/error.hpp"

namespace ane {

namespace {
double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ProgressLine::ProgressLine(int force) : enabled_(force < 0 ? ::isatty(STDERR_FILENO) != 0 : force != 0) {}

void ProgressLine::update(const std::string& text, bool always) {
    if (!enabled_) return;
    const double t = now_seconds();
    if (!always && last_ >= 0 && t - last_ < 0.1) return;
    last_ = t;
    std::fprintf(stderr, "\r%s\033[K", text.c_str());
    std::fflush(stderr);
    dirty_ = true;
}

void ProgressLine::finish() {
    if (enabled_ && dirty_) std::fputc('\n', stderr);
    dirty_ = false;
}

JsonLinesLog::JsonLinesLog(const std::string& path, bool append) : path_(path) {
    if (path.empty()) return;
    file_ = std::fopen(path.c_str(), append ? "a" : "w");
    if (!file_) throw error(path, ": cannot open for writing");
}

JsonLinesLog::~JsonLinesLog() {
    if (file_) std::fclose(file_);
}

void JsonLinesLog::write(const nlohmann::json& record) {
    if (!file_) return;
    const std::string line = record.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) throw error(path_, ": write failed");
    std::fflush(file_);
}

std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    const long total = long(s + 0.5);
    char buf[32];
    if (total >= 3600)
        std::snprintf(buf, sizeof(buf), "%ldh%02ldm", total / 3600, (total / 60) % 60);
    else if (total >= 60)
        std::snprintf(buf, sizeof(buf), "%ldm%02lds", total / 60, total % 60);
    else
        std::snprintf(buf, sizeof(buf), "%lds", total);
    return buf;
}

std::size_t peak_rss_bytes() {
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
#if defined(__APPLE__)
    return std::size_t(ru.ru_maxrss);  // bytes on macOS, kilobytes on Linux
#else
    return std::size_t(ru.ru_maxrss) * 1024;
#endif
}

}  // namespace ane
