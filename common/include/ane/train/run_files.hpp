#pragma once
// The files of a training run (ane-train, ane-mezo), checked before the model is loaded:
// inputs readable once, outputs creatable, nothing overwritten without --force. Resuming a
// checkpoint in place (--resume X -o X) owns X's companions: the best checkpoint and an
// appended log.
#include <string>

#include "ane/train/run_data.hpp"

namespace ane {

struct RunFiles {
    ModelSource source;
    std::string data, val, output, log_json;
    bool writes_best = true;  // false when validation is off (--eval-every 0)
    bool force = false;
};

// Throws (UsageError for contradictions, Error for files) on the first problem. Returns
// whether the run resumes its own output in place.
bool check_run_files(const RunFiles& files);

}  // namespace ane
