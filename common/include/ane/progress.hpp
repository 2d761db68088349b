#pragma once
// What long work shows: a one-line progress display redrawn on a terminal (silent when
// stderr is not one, unless forced), and JSON-lines telemetry to a file.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace ane {

class ProgressLine {
public:
    // enabled: nullopt = only when stderr is a terminal.
    explicit ProgressLine(int force = -1);
    bool enabled() const { return enabled_; }
    // Redraws the line (at most ~10 times a second unless `always`).
    void update(const std::string& text, bool always = false);
    // Ends the line so that other output starts on a fresh one.
    void finish();

private:
    bool enabled_ = false;
    bool dirty_ = false;
    double last_ = -1.0;
};

class JsonLinesLog {
public:
    JsonLinesLog() = default;
    // Truncates (or appends: a resumed run continues its log); empty path = disabled.
    explicit JsonLinesLog(const std::string& path, bool append = false);
    ~JsonLinesLog();
    JsonLinesLog(const JsonLinesLog&) = delete;
    JsonLinesLog& operator=(const JsonLinesLog&) = delete;
    void write(const nlohmann::json& record);
    bool enabled() const { return file_ != nullptr; }

private:
    std::FILE* file_ = nullptr;
    std::string path_;
};

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);
// Peak resident set size of this process, bytes.
std::size_t peak_rss_bytes();

}  // namespace ane
