#pragma once
// Command-line handling every tool shares (header-only: only the tools link CLI11).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ane/log.hpp"

namespace ane {

// Parses argv. Returns nothing when the tool should go on, otherwise its exit code: 0 after
// --help or --version, 2 after a usage error (reported on one line, with a pointer to --help).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const std::string& tool) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "%s: usage error: %s (see %s --help)\n", tool.c_str(), e.what(), tool.c_str());
        return 2;
    }
    return std::nullopt;
}

// The options given on the command line, by their first long name ("--lr"): they win over
// the settings a resumed run takes from its checkpoint.
inline std::vector<std::string> given_flags(const CLI::App& app) {
    std::vector<std::string> flags;
    for (const auto* opt : app.get_options())
        if (opt->count() > 0 && !opt->get_lnames().empty()) flags.push_back("--" + opt->get_lnames().front());
    return flags;
}

// -q/--quiet and -v/--verbose, the same on every tool; on ane-convert they are accepted
// after the subcommand too (the app falls through to its parent).
struct Verbosity {
    bool quiet = false, verbose = false;
    void apply() const {
        log::set_level(quiet ? log::Level::Quiet : verbose ? log::Level::Debug : log::Level::Info);
    }
};
inline void add_verbosity_flags(CLI::App& app, Verbosity& v) {
    auto* q = app.add_flag("-q,--quiet", v.quiet,
                           "only results on stdout (the key: value lines, or nothing) and errors on stderr");
    app.add_flag("-v,--verbose", v.verbose, "more detail on stderr")->excludes(q);
}

// Numeric ranges. Validators see the text before conversion, so that nan, inf and values
// out of range are refused as usage errors whose message gives the range.
namespace range {

inline std::optional<double> number(const std::string& text) {
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return v;
}

inline std::string bound_text(double v) {
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    std::ostringstream out;
    out << v;
    return out.str();
}

// A finite number in [lo, hi] with either end open; infinities mean no bound on that side.
inline CLI::Validator between(double lo, double hi, bool lo_open = false, bool hi_open = false) {
    const std::string desc = std::string(lo_open ? "(" : "[") + bound_text(lo) + ", " + bound_text(hi) + (hi_open ? ")" : "]");
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            const auto v = number(text);
            if (!v || !std::isfinite(*v)) return "'" + text + "' is not a finite number; the range is " + desc;
            const bool low = lo_open ? *v <= lo : *v < lo;
            const bool high = hi_open ? *v >= hi : *v > hi;
            if (low || high) return text + " is outside the range " + desc;
            return {};
        },
        desc, "RANGE");
}
constexpr double kInf = std::numeric_limits<double>::infinity();
inline CLI::Validator positive() { return between(0, kInf, true, true); }
inline CLI::Validator non_negative() { return between(0, kInf, false, true); }
inline CLI::Validator at_least(double lo) { return between(lo, kInf, false, true); }
inline CLI::Validator finite() { return between(-kInf, kInf, true, true); }

}  // namespace range

}  // namespace ane
