#pragma once
// Command-line handling every tool shares (header-only: only the tools link CLI11).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace ane {

// Parses argv. Returns nothing when the tool should go on, otherwise its exit code: 0 after
// --help or --version, 2 after a usage error (reported on one line, with a pointer to --help).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const std::string& tool) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "%s: usage error: %s\nRun '%s --help' for usage.\n", tool.c_str(), e.what(), tool.c_str());
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

}  // namespace ane
