#include "ane/train/report.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "ane/progress.hpp"

namespace ane {

namespace {
std::string format(const char* f, ...) {
    char buf[512];
    va_list args;
    va_start(args, f);
    std::vsnprintf(buf, sizeof(buf), f, args);
    va_end(args);
    return buf;
}
}  // namespace

nlohmann::json step_record(const StepReport& r) {
    nlohmann::json rec = {{"step", r.step},       {"loss", r.loss},         {"lr", r.lr},
                          {"skipped", r.skipped}, {"ms", r.step_seconds * 1000.0},
                          {"tokens_per_s", r.tokens_per_second}, {"tokens", r.tokens_seen},
                          {"elapsed_s", r.elapsed_seconds}};
    if (r.proj_grad) {
        rec["proj_grad"] = *r.proj_grad;
        if (r.loss_minus) rec["loss_minus"] = *r.loss_minus;
    } else {
        rec["grad_norm"] = r.grad_norm;
    }
    if (r.val_loss) rec["val_loss"] = *r.val_loss;
    if (r.loss_scale) rec["loss_scale"] = *r.loss_scale;
    return rec;
}

std::string step_line(const StepReport& r) {
    double eta = -1;
    if (r.total_steps > 0) eta = r.elapsed_seconds / std::max(1, r.step) * (r.total_steps - r.step);
    if (r.time_budget > 0) {
        const double left = std::max(0.0, r.time_budget - r.run_seconds);
        eta = eta < 0 ? left : std::min(eta, left);
    }
    std::string text = r.total_steps > 0 ? format("step %d/%d", r.step, r.total_steps) : format("step %d", r.step);
    text += format("  loss %.6f", r.loss);
    if (r.val_loss) text += format("  val %.6f", *r.val_loss);
    if (r.proj_grad) text += format("  g %+.3e", *r.proj_grad);
    if (r.loss_scale) text += format("  scale %.0f", *r.loss_scale);
    text += format("  lr %.2e", r.lr) + format("  %.0f tok/s", r.tokens_per_second) + "  ETA " + format_duration(eta);
    return text;
}

std::string efficiency_report(const TrainSummary& s, const std::string& checkpoint, bool keys_only) {
    const double step_s = s.step_seconds;
    // A step's time runs from drawing its data to the end of its update, optimizer included.
    const double total = step_s;
    const bool zeroth_order = s.forward_passes > 0;
    // MeZO's perturbation sweeps run inside its steps; backprop's optimizer after them.
    const double update_s = zeroth_order ? s.perturb_seconds : s.optimizer_seconds;
    // The update is part of the step, once: the shares add up to 100%.
    const double other = std::max(0.0, step_s - s.matmul_seconds - s.attention_seconds - s.elementwise_seconds -
                                           s.kernel_seconds - update_s);
    auto share = [&](double x) { return total > 0 ? 100.0 * x / total : 0.0; };
    std::string out;
    if (!keys_only) out += "--- efficiency\n";
    out += "device: " + s.device_description + "\n";
    out += format("wall time: %.1f s (training steps %.1f s, optimizer %.1f s, evaluation %.1f s, checkpoint I/O %.1f s)\n",
                  s.wall_seconds, step_s, s.optimizer_seconds, s.eval_seconds, s.io_seconds);
    if (s.steps_done > 0) {
        out += format("steps: %d, %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s achieved\n", s.steps_done,
                      1000.0 * total / s.steps_done, s.tokens / std::max(1e-9, total),
                      s.flops / std::max(1e-9, step_s) / 1e9);
        out += format("time in steps: matrix products %.0f%%, attention %.0f%%, elementwise %.0f%%, %s%s %.0f%%, other %.0f%%\n",
                      share(s.matmul_seconds), share(s.attention_seconds), share(s.elementwise_seconds),
                      s.kernel_seconds > 0 ? format("ANE kernels %.0f%%, ", share(s.kernel_seconds)).c_str() : "",
                      zeroth_order ? "perturbation and update" : "optimizer", share(update_s), share(other));
    }
    if (s.forward_passes > 0 && s.steps_done > 0) {
        const double fwd_ms = 1000.0 * s.forward_seconds / double(s.forward_passes);
        const double step_ms = 1000.0 * total / s.steps_done;
        out += format("forward passes: %lld, %.1f ms each; a step costs %.2f forward passes (%.1f ms perturbing and updating per step)\n",
                      static_cast<long long>(s.forward_passes), fwd_ms, step_ms / std::max(1e-9, fwd_ms),
                      1000.0 * s.perturb_seconds / s.steps_done);
    }
    out += s.kernel_report;
    out += format("peak RSS: %.1f MB\n", peak_rss_bytes() / 1e6);
    out += "---\n";
    if (keys_only) out.clear();
    out += format("mode: %s\n", s.mode.c_str());
    out += format("final_loss: %.6f\n", s.final_loss);
    if (s.last_val_loss) out += format("val_loss: %.6f\n", *s.last_val_loss);
    if (s.best_val_loss) out += format("best_val_loss: %.6f\n", *s.best_val_loss);
    out += format("training_seconds: %.3f\n", total);
    out += format("total_seconds: %.3f\n", s.wall_seconds);
    out += format("total_tokens_M: %.6f\n", s.tokens / 1e6);
    out += format("num_steps: %d\n", s.steps_done);
    out += format("skipped_updates: %d\n", s.skipped_updates);
    out += format("num_params_M: %.3f\n", s.params / 1e6);
    out += format("trainable_params_M: %.6f\n", s.trainable_params / 1e6);
    out += format("compact_vocab: %d\n", s.compact_vocab);
    out += format("peak_rss_mb: %.1f\n", peak_rss_bytes() / 1e6);
    out += "checkpoint: " + checkpoint + "\n";
    return out;
}

TrainCallbacks console_callbacks(const std::string& tool, ProgressLine& line, JsonLinesLog& json, bool quiet) {
    TrainCallbacks cb;
    cb.info = [&line, quiet](const std::string& s) {
        if (quiet) return;
        line.finish();
        std::fprintf(stderr, "%s\n", s.c_str());
    };
    cb.warning = [&line, tool](const std::string& s) {
        line.finish();
        std::fprintf(stderr, "%s: warning: %s\n", tool.c_str(), s.c_str());
    };
    cb.step = [&line, &json, quiet](const StepReport& r) {
        json.write(step_record(r));
        const std::string text = step_line(r);
        line.update(text, r.val_loss.has_value());
        if (!r.val_loss || quiet) return;
        if (line.enabled())
            line.finish();
        else
            std::fprintf(stderr, "%s\n", text.c_str());
    };
    return cb;
}

}  // namespace ane
