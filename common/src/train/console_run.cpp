#include "ane/train/console_run.hpp"

#include <csignal>
#include <cstdio>

#include "ane/distributed.hpp"
#include "ane/progress.hpp"
#include "ane/train/report.hpp"

namespace ane {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_interrupt(int) { g_stop.store(true); }
}  // namespace

int run_on_console(const char* tool, const RunFiles& files, bool quiet, bool progress, const RunFunction& run) {
    const bool in_place = check_run_files(files);
    // Under mpirun rank 0 alone logs and reports; the others run silently beside it.
    const bool root = dist::is_root();
    JsonLinesLog json(root ? files.log_json : "", in_place);
    ProgressLine line(quiet || !root ? 0 : (progress ? 1 : -1));
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    TrainCallbacks cb = console_callbacks(tool, line, json, quiet || !root);
    if (!root) cb.warning = [](const std::string&) {};
    const TrainSummary s = run(cb, g_stop);
    line.finish();
    if (s.interrupted && root)
        std::fprintf(stderr, "%s: interrupted; saved %s (resume with --resume)\n", tool, files.output.c_str());
    std::fputs(efficiency_report(s, files.output, quiet).c_str(), stdout);
    return s.interrupted ? 130 : 0;
}

}  // namespace ane
