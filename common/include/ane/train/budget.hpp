#pragma once
// When a training run ends and where its learning-rate schedule stands, shared by ane-train
// and ane-mezo. A run has a step budget (--steps, total updates), a time budget (--time,
// total seconds of the run's training loop), or both; resumes count toward both. With a
// time budget alone the run goes on until the time is spent, and the schedule follows the
// time: warmup over the first `warmup` updates, then the cosine over the fraction of the
// budget spent (AutoANE instead passes a huge --steps, which leaves lr flat at its peak).
#include "ane/optim.hpp"

namespace ane {

constexpr int kDefaultSteps = 1000;

struct RunBudget {
    int steps = 0;          // total updates; 0 = no step budget
    double seconds = 0;     // total seconds; 0 = no time budget
    int stop_after = 0;     // updates in this invocation; 0 = no limit

    // Neither budget given: kDefaultSteps updates.
    static RunBudget resolve(int steps, double seconds, int stop_after) {
        return {steps > 0 || seconds > 0 ? steps : kDefaultSteps, seconds, stop_after};
    }
    bool by_time() const { return steps <= 0; }
    // run_seconds: the run's loop time so far, resumes included.
    bool done(int step, double run_seconds, int steps_this_invocation) const {
        return (steps > 0 && step >= steps) || (seconds > 0 && run_seconds >= seconds) ||
               (stop_after > 0 && steps_this_invocation >= stop_after);
    }
    // The learning rate of update `step` (0-based).
    float lr(const LrSchedule& schedule, int step, double run_seconds) const {
        if (!by_time()) return schedule.at(step);
        return schedule.at_fraction(step, run_seconds / seconds);
    }
};

}  // namespace ane
