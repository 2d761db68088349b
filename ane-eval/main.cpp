// ane-eval: validation loss and bits-per-byte of any model file on a token file.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "ane/cli.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/runtime.hpp"
#include "ane/distributed.hpp"
#include "ane/tool_main.hpp"
#include "ane/eval.hpp"
#include "ane/file_checks.hpp"
#include "ane/model/inference_weights.hpp"
#include "ane/model_file.hpp"
#include "ane/model_tokenizer.hpp"
#include "ane/progress.hpp"
#include "ane/token_file.hpp"
#include "ane/tokenizer.hpp"

namespace {
// The default window: the model's context, capped so that a converted model whose config
// allows 32k positions is not evaluated at a length it was hardly trained at.
constexpr int kDefaultMaxWindow = 1024;
}  // namespace

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-eval: validation loss and bits-per-byte of a model on a token file"};
    app.set_version_flag("--version", std::string("ane-eval ") + ANE_VERSION);
    std::string model_path, data_path, tokenizer_path, weights_type, device_name = "cpu", ane_mode = "full", gemm = "auto", precision = "fp32";
    int seq = 0, stride = 0, batch = 8, threads = 0;
    std::int64_t max_tokens = 0;
    bool compact = false, json = false, progress_flag = false;
    ane::Verbosity verbosity;
    namespace r = ane::range;
    app.add_option("model", model_path, "any model file: BLZT, int8 artifact, GGUF, Hugging Face, llama2.c")
        ->required();
    app.add_option("--data", data_path, "token file to evaluate (raw uint16 or shard; '-' reads stdin)")->required();
    app.add_option("-t,--tokenizer", tokenizer_path,
                   "tokenizer of the data (SentencePiece .model, llama2.c tokenizer.bin, GGUF vocabulary), for bytes "
                   "per token (default: the one the model carries; without any: no bits-per-byte)");
    app.add_option("--seq", seq,
                   "window length (default: the model's context, at most " + std::to_string(kDefaultMaxWindow) + ")")
        ->check(r::between(1, 1 << 20));
    app.add_option("--stride", stride, "how far each window advances, 1..seq (default: --seq, the plain evaluation)")
        ->check(r::between(1, 1 << 20));
    app.add_option("--batch", batch, "windows per forward pass (default 8)")->check(r::between(1, 1 << 16));
    app.add_option("--max-tokens", max_tokens, "evaluate only the first N tokens of the file (default 0: all)")
        ->check(r::non_negative());
    app.add_flag("--compact", compact,
                 "softmax over the ids present in the data file (AutoANE's val_loss) instead of the full vocabulary");
    app.add_flag("--json", json, "print one JSON object: val_loss, val_bpb, tokens, bytes, seq, stride");
    ane::add_weights_flag(app, weights_type);
    ane::add_device_flags(app, {device_name, ane_mode, gemm, precision});
    app.add_option("--threads", threads, "threads (default 0: all cores)")->check(r::between(0, 4096));
    app.add_flag("--progress", progress_flag, "show the progress line even when stderr is not a terminal");
    ane::add_verbosity_flags(app, verbosity);
    app.footer(
        "Windows of --seq tokens advance by --stride. The first window scores all of its positions, every later\n"
        "one only its last --stride positions (the targets no earlier window scored), so every token after the\n"
        "first is scored exactly once, with at least seq - stride tokens of context except at the start; a final\n"
        "partial window covers the tail. --stride = --seq is the plain evaluation: consecutive non-overlapping\n"
        "windows. val_bpb = (val_loss / ln 2) x (scored tokens / scored bytes), bytes counted per token as the\n"
        "parameter-golf challenge does (a token's UTF-8 bytes, plus one for a leading space unless the previous\n"
        "token is a boundary).");
    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-eval")) return *code;
    verbosity.apply();
    return ane::run_tool("ane-eval", [&] {
        ane::check_device(device_name);
        const ane::DeviceOptions device_opts = ane::device_options(threads, ane_mode, gemm, precision);
        const std::optional<ane::ggml::Type> weights_as = ane::weight_type_for_device(weights_type, device_name);
        ane::FileChecks files(false);
        files.input(model_path, "the model");
        files.input(data_path, "--data");
        files.input(tokenizer_path, "--tokenizer");
        if (seq > 0 && stride > 0)
            ane::require_usage(stride <= seq, "--stride ", stride, " is longer than the window --seq ", seq,
                               "; the range is [1, seq]");
        const ane::TokenFile data(data_path);
        const ane::InferenceModel loaded = ane::load_inference_model(model_path, weights_as);
        const ane::Checkpoint& ck = loaded.checkpoint;
        // All float32: the batched training forward; matrices kept encoded: the KV-cache decoder.
        const bool encoded = !loaded.weights.all_f32();
        const ane::ModelConfig& c = ck.weights.config;
        auto tokens = data.tokens();
        if (max_tokens > 0 && std::size_t(max_tokens) < tokens.size()) tokens = tokens.first(std::size_t(max_tokens));
        if (seq <= 0) {  // the default window never exceeds the data
            seq = std::min(c.seq, kDefaultMaxWindow);
            if (tokens.size() >= 2 && tokens.size() <= std::size_t(seq)) seq = int(tokens.size() - 1);
        }
        if (stride <= 0) stride = seq;
        ane::require_usage(stride <= seq, "--stride ", stride, " is longer than the window (", seq,
                           ", from the model's context and the data); the range is [1, seq]");
        for (std::size_t i = 0; i < tokens.size(); ++i)
            ane::require(tokens[i] < std::uint32_t(c.vocab), data_path, ": token ", i, " has id ", tokens[i],
                         ", outside the model's vocabulary of ", c.vocab);
        std::unique_ptr<ane::Tokenizer> tok = ane::model_tokenizer(tokenizer_path, ck, model_path, /*required=*/false);
        std::optional<ane::ByteCounter> bytes;
        if (tok) bytes.emplace(*tok, c.vocab);
        const auto windows = ane::plan_eval_windows(tokens.size(), seq, stride);
        const ane::VocabMap map =
            compact ? ane::VocabMap::build(data.tokens(), c.vocab) : ane::VocabMap::identity(c.vocab);
        if (ane::dist::size() > 1) {  // under mpirun: every rank must evaluate the same thing
            std::string settings = std::to_string(seq) + " " + std::to_string(stride) + " " + std::to_string(compact);
            std::uint64_t h = ane::dist::fingerprint(settings.data(), settings.size());
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                const std::uint32_t t = tokens[i];
                h = ane::dist::fingerprint(&t, sizeof t, h);
            }
            h = ck.weights.fingerprint(h);
            loaded.weights.for_each([&](const std::string&, const ane::QuantMatrix& m) {
                if (m.type() != ane::ggml::Type::F32) h = ane::dist::fingerprint(m.data(), m.bytes(), h);
            });
            ane::dist::require_same(h, "the model, the data or the flags they were started with");
        }
        auto device = ane::make_device(device_name, device_opts);
        std::optional<ane::Transformer> model;
        std::optional<ane::Decoder> decoder;
        if (encoded) {
            // --batch windows per product, up to 4096 rows (the logits of every row are kept).
            const int windows = std::max(1, std::min(batch, 4096 / seq));
            decoder.emplace(loaded.weights, *device, seq, windows * seq, windows);
        }
        else
            model.emplace(ck.weights, *device, batch, map, /*for_training=*/false, seq);
        ane::ProgressLine line(verbosity.quiet || !ane::dist::is_root() ? 0 : (progress_flag ? 1 : -1));
        const auto t0 = std::chrono::steady_clock::now();
        const auto show = [&](const ane::EvalProgress& p) {
            const double rate = p.tokens_done / std::max(p.seconds, 1e-9);
            char text[160];
            std::snprintf(text, sizeof(text), "evaluating %lld/%lld tokens  %.0f tok/s  ETA %s",
                          static_cast<long long>(p.tokens_done), static_cast<long long>(p.tokens_total), rate,
                          ane::format_duration((p.tokens_total - p.tokens_done) / std::max(rate, 1e-9)).c_str());
            line.update(text);
        };
        const ane::ByteCounter* counter = bytes ? &*bytes : nullptr;
        const ane::EvalResult mine =
            encoded ? ane::evaluate_stream(*decoder, map, tokens, ane::rank_share(windows), counter, show)
                    : ane::evaluate_stream(*model, tokens, ane::rank_share(windows), counter, show);
        line.finish();
        const ane::EvalResult r = ane::sum_across_ranks(mine);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const char* softmax = compact ? "compact" : "full";
        ane::require(std::isfinite(r.val_loss()), model_path, ": the loss is ", r.val_loss(),
                     ", not a finite number: the model's weights hold NaN or Inf");
        if (json) {
            nlohmann::json j = {{"val_loss", r.val_loss()}, {"tokens", r.tokens}, {"bytes", r.bytes},
                                {"seq", seq}, {"stride", stride}, {"softmax", softmax},
                                {"vocab", map.compact_vocab()}, {"windows", windows.size()},
                                {"seconds", seconds}, {"tokens_per_second", r.tokens / std::max(seconds, 1e-9)},
                                {"weights", loaded.weights.summary()}};
            j["val_bpb"] = bytes ? nlohmann::json(r.val_bpb()) : nlohmann::json(nullptr);
            std::printf("%s\n", j.dump().c_str());
            return 0;
        }
        if (verbosity.quiet) {
            std::printf("val_loss: %.6f\n", r.val_loss());
            if (bytes) std::printf("val_bpb: %.6f\n", r.val_bpb());
            return 0;
        }
        std::printf("model: %s (%lld parameters)\n", model_path.c_str(), static_cast<long long>(c.params()));
        std::printf("weights: %s%s\n", loaded.weights.summary().c_str(), encoded ? ", run encoded (KV-cache decoder)" : "");
        std::printf("data: %s, %zu tokens evaluated\n", data_path.c_str(), tokens.size());
        std::printf("window: seq %d, stride %d, %zu windows; softmax over the %s vocabulary (%d ids)\n", seq, stride,
                    windows.size(), softmax, map.compact_vocab());
        std::printf("val_loss: %.6f (nats per token, %lld tokens scored)\n", r.val_loss(), static_cast<long long>(r.tokens));
        if (bytes)
            std::printf("val_bpb: %.6f (%lld bytes, %.3f bytes per token)\n", r.val_bpb(),
                        static_cast<long long>(r.bytes), double(r.bytes) / double(std::max<std::int64_t>(r.tokens, 1)));
        else
            std::printf("val_bpb: not computed (give --tokenizer)\n");
        std::printf("speed: %.0f tokens/s over %.1f s (%s)\n", r.tokens / std::max(seconds, 1e-9), seconds,
                    device->describe().c_str());
        return 0;
    });
}
