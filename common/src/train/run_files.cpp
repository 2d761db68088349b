#include "ane/train/run_files.hpp"

#include "ane/file_checks.hpp"
#include "ane/train/trainer.hpp"

namespace ane {

bool check_run_files(const RunFiles& f) {
    FileChecks checks(f.force);
    const bool in_place = !f.source.resume.empty() && same_file(f.source.resume, f.output);
    checks.input(f.data, "--data");
    checks.input(f.val, "--val");
    checks.input(f.source.init, "--init");
    checks.input(f.source.config_path, "--config");
    if (!in_place) checks.input(f.source.resume, "--resume");
    checks.output(f.output, "-o/--output", in_place);
    if (f.writes_best) checks.output(best_checkpoint_path(f.output), "the best checkpoint (NAME.best.EXT)", in_place);
    checks.output(f.log_json, "--log-json", in_place);
    return in_place;
}

}  // namespace ane
