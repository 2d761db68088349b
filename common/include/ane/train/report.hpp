#pragma once
// What ane-train and ane-mezo show: the progress-line text, the JSON-lines record of a step
// and the end-of-run efficiency report (as text; the tools print it).
#include <string>

#include <nlohmann/json.hpp>

#include "ane/progress.hpp"
#include "ane/train/trainer.hpp"

namespace ane {

nlohmann::json step_record(const StepReport& r);
// "step 12/1000  loss 3.210000  val 3.300000  lr 3.00e-04  960 tok/s  ETA 2m05s" ("step 12"
// with a time budget alone; the ETA is the nearer end).
std::string step_line(const StepReport& r);
// The "--- efficiency" block and the machine-readable "key: value" lines after "---"
// (only those with keys_only, for --quiet).
std::string efficiency_report(const TrainSummary& s, const std::string& checkpoint, bool keys_only = false);

// What the tools show while a run goes: messages and warnings on stderr (ending the progress
// line first), the progress line after every step, a JSON record per step, and each
// validation step as a line of its own. `line` and `json` must outlive the callbacks.
TrainCallbacks console_callbacks(const std::string& tool, ProgressLine& line, JsonLinesLog& json, bool quiet);

}  // namespace ane
