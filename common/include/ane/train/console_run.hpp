#pragma once
// What ane-train and ane-mezo do around a run: check its files before anything is loaded,
// open the JSON log (appended when resuming in place) and the progress line, turn Ctrl-C and
// SIGTERM into a saved, resumable stop, then print the efficiency report.
#include <atomic>
#include <functional>

#include "ane/train/run_files.hpp"
#include "ane/train/trainer.hpp"

namespace ane {

using RunFunction = std::function<TrainSummary(const TrainCallbacks&, const std::atomic<bool>& stop)>;

// Returns the tool's exit code: 0, or 130 after an interruption.
int run_on_console(const char* tool, const RunFiles& files, bool quiet, bool progress, const RunFunction& run);

}  // namespace ane
