#pragma once
// MeZO: zeroth-order training with forward passes only (spec/mezo.md). Full-parameter or on
// LoRA adapters (merged into the weights after every change, or split: added in the forward
// pass), two-sided SPSA or one-sided estimates from several perturbations (FZOO).
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "ane/mezo/lora.hpp"
#include "ane/mezo/perturb.hpp"
#include "ane/train/trainer.hpp"

namespace ane {

enum class LoraMode { None, Merge, Split };

struct MezoOptions {
    // Model: exactly one of preset / config_path / init / resume.
    std::string preset, config_path, init, resume;
    std::optional<double> residual_scale;
    std::optional<int> seq;      // the window (default: the model's context)
    std::optional<int> context;  // the context stored with the model (see resolve_run_shape)
    // Data.
    std::string data, val;
    bool full_vocab = false;
    // Run.
    std::string output;
    bool merge_output = false;  // fold the adapters into the final checkpoint (for export)
    long seed = 42;
    int steps = 0;            // total; 0 = none (neither budget: kDefaultSteps)
    double time_budget = 0;   // seconds in total, resumes included; 0 = none
    int stop_after = 0;
    int batch = 1;                // windows per loss evaluation
    std::optional<float> lr;      // default 1e-5 full-parameter, 1e-4 LoRA (AutoANE's published rates)
    float epsilon = 1e-3f;
    float min_lr_frac = 0.1f;     // cosine floor
    int warmup = 0;
    float weight_decay = 0.0f;    // decoupled, on matrices/embeddings/adapters, not on the gains
    Direction direction = Direction::Rademacher;
    int zo_samples = 0;           // 0: two-sided SPSA; N >= 1: N one-sided estimates sharing L0
    // Undo perturbations from a copy of the trainable set (bit-exact; costs that copy's memory)
    // or arithmetically (train_mezo: θ + εz − 2εz + εz, exact only up to rounding; no copy).
    bool exact_restore = true;
    // LoRA.
    LoraMode lora = LoraMode::None;
    int lora_rank = 8;
    std::string lora_targets = "attn";
    int eval_every = 100, eval_windows = 10;
    int save_every = 0;
    std::string device = "cpu";
    std::string ane_mode = "full";
    std::string gemm = "auto";
    std::string precision = "fp32";
    int threads = 0;
    std::vector<std::string> explicit_flags;
};

const char* lora_mode_name(LoraMode mode);
LoraMode parse_lora_mode(const std::string& name);  // "none", "merge", "split"

// The trainable buffers in train_mezo's perturbation order: full-parameter (embed, per layer
// rms_att wq wk wv wo rms_ffn w1 w2 w3, rms_final, then an untied classifier), or with LoRA
// (per layer the adapters, rms_att, rms_ffn; then rms_final); then the layers' family extras
// (all of them, or with LoRA only the QK-norm gains).
std::vector<ParamSpan> mezo_parameters(Weights& weights, Lora* lora);

TrainSummary train_mezo(const MezoOptions& options, const TrainCallbacks& callbacks, const std::atomic<bool>& stop);

}  // namespace ane
