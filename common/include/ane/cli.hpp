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

// The budget flags of ane-train and ane-mezo; `unit` names a step ("updates", "steps").
inline void add_budget_flags(CLI::App& app, int& steps, double& seconds, int& stop_after, const std::string& unit) {
    app.add_option("--steps", steps, unit + " in total, resumes included (default 1000 unless --time is given)")
        ->check(range::at_least(1));
    app.add_option("--time", seconds,
                   "seconds of training in total, resumes included; alone, the run lasts the time and the cosine "
                   "follows the time spent")
        ->check(range::positive());
    app.add_option("--stop-after", stop_after, "end this invocation after N " + unit + ", saving a resumable checkpoint")
        ->check(range::at_least(1));
}

// --device, --ane-mode, --gemm and --precision, as every tool that computes takes them.
// --weights of ane-eval and ane-generate (weight_type_for_device reads it).
inline void add_weights_flag(CLI::App& app, std::string& weights) {
    app.add_option("--weights", weights,
                   "how the matrices are kept in memory: f32, f16, bf16, q8_0, q4_0 (default: as the file stores them, "
                   "so a GGUF's F16/Q8_0/Q4_0/K-quant matrices stay encoded; a float32 model is encoded at load)");
}

struct DeviceFlagTargets {
    std::string& device;
    std::string& ane_mode;
    std::string& gemm;
    std::string& precision;
};
inline void add_device_flags(CLI::App& app, const DeviceFlagTargets& t) {
    app.add_option("--device", t.device,
                   "compute backend: cpu, or ane-sim (the Neural Engine's MIL programs run in fp16 on the CPU; "
                   "ANE_SIM_ACCUM=fp16 for fp16 accumulation) (default cpu)");
    app.add_option("--ane-mode", t.ane_mode,
                   "what an ANE device runs: full (fused attention and FFN forward and the backward blocks), matmul "
                   "(the projections only), cpu-bwd (the fused forward, backward on the cpu) (default full)")
        ->check(CLI::IsMember({"full", "matmul", "cpu-bwd"}));
    app.add_option("--gemm", t.gemm,
                   "the cpu's matrix-product library: openblas, onednn, or auto (both timed on each shape at its "
                   "first use, the faster kept; a forced library gives the same bits run after run) (default auto)")
        ->check(CLI::IsMember({"openblas", "onednn", "auto"}));
    app.add_option("--precision", t.precision,
                   "the cpu's matrix products: fp32, or bf16 (operands rounded to bf16, fp32 accumulation; our "
                   "AVX512_BF16 kernel, oneDNN's with --gemm onednn or on AMX; weights, gradients and optimizer state "
                   "stay fp32; CPUs with AVX512_BF16 or AMX) (default fp32)")
        ->check(CLI::IsMember({"fp32", "bf16"}));
}

// Validation, saving, device and log flags of ane-train and ane-mezo.
struct RunFlagTargets {
    int& eval_every;
    int& eval_windows;
    int& save_every;
    std::string& device;
    std::string& ane_mode;
    std::string& gemm;
    std::string& precision;
    int& threads;
    std::string& log_json;
};
inline void add_run_flags(CLI::App& app, const RunFlagTargets& t, const std::string& unit) {
    app.add_option("--eval-every", t.eval_every,
                   "validation loss every N " + unit + " and at the end (0 = never; default 100)")
        ->check(range::non_negative());
    app.add_option("--eval-windows", t.eval_windows,
                   "validation windows, the same ones every time (default " + std::to_string(t.eval_windows) + ")")
        ->check(range::between(1, 1 << 20));
    app.add_option("--save-every", t.save_every, "also save the checkpoint every N " + unit + " (default 0: only at the end)")
        ->check(range::non_negative());
    add_device_flags(app, {t.device, t.ane_mode, t.gemm, t.precision});
    app.add_option("--threads", t.threads, "threads for BLAS and kernels (default 0: all cores)")
        ->check(range::between(0, 4096));
    app.add_option("--log-json", t.log_json,
                   "write one JSON object per " + unit.substr(0, unit.size() - 1) +
                       " to this file (appended when resuming in place)");
}

}  // namespace ane
