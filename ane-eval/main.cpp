// ane-eval: validation loss and bits-per-byte of any model file on a token file.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "ane/cli.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/runtime.hpp"
#include "ane/tool_main.hpp"
#include "ane/eval.hpp"
#include "ane/model_file.hpp"
#include "ane/progress.hpp"
#include "ane/token_file.hpp"
#include "ane/tokenizer.hpp"

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-eval: validation loss and bits-per-byte of a model on a token file"};
    app.set_version_flag("--version", std::string("ane-eval ") + ANE_VERSION);
    std::string model_path, data_path, tokenizer_path, device_name = "cpu";
    int seq = 0, stride = 0, batch = 8, threads = 0;
    std::int64_t max_tokens = 0;
    bool compact = false, json = false, quiet = false, progress_flag = false;
    app.add_option("model", model_path, "any model file: BLZT, int8 artifact, GGUF, Hugging Face, llama2.c")
        ->required();
    app.add_option("--data", data_path, "token file to evaluate (raw uint16 or shard)")->required();
    app.add_option("-t,--tokenizer", tokenizer_path,
                   "SentencePiece model of the data, for bytes per token (without it: no bits-per-byte)");
    app.add_option("--seq", seq, "window length (default: the model's)");
    app.add_option("--stride", stride, "how far each window advances (default: --seq, the plain evaluation)");
    app.add_option("--batch", batch, "windows per forward pass (default 8)");
    app.add_option("--max-tokens", max_tokens, "evaluate only the first N tokens of the file");
    app.add_flag("--compact", compact,
                 "softmax over the ids present in the data file (AutoANE's val_loss) instead of the full vocabulary");
    app.add_flag("--json", json, "print one JSON object: val_loss, val_bpb, tokens, bytes, seq, stride");
    app.add_option("--device", device_name, "compute backend (default cpu)");
    app.add_option("--threads", threads, "threads (default: all cores)");
    app.add_flag("--progress", progress_flag, "show the progress line even when stderr is not a terminal");
    app.add_flag("-q,--quiet", quiet, "no progress line");
    app.footer(
        "Windows of --seq tokens advance by --stride. The first window scores all of its positions, every later\n"
        "one only its last --stride positions (the targets no earlier window scored), so every token after the\n"
        "first is scored exactly once, with at least seq - stride tokens of context except at the start; a final\n"
        "partial window covers the tail. --stride = --seq is the plain evaluation: consecutive non-overlapping\n"
        "windows. val_bpb = (val_loss / ln 2) x (scored tokens / scored bytes), bytes counted per token as the\n"
        "parameter-golf challenge does (a token's UTF-8 bytes, plus one for a leading space unless the previous\n"
        "token is a boundary).");
    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-eval")) return *code;
    return ane::run_tool("ane-eval", [&] {
        ane::Checkpoint ck = ane::load_model(model_path);
        ane::ModelConfig& c = ck.weights.config;
        if (seq <= 0) seq = c.seq;
        if (stride <= 0) stride = seq;
        c.seq = seq;  // RoPE extends to any length; the model's buffers follow the window
        ane::require(batch >= 1, "--batch must be at least 1");
        const ane::TokenFile data(data_path);
        auto tokens = data.tokens();
        if (max_tokens > 0 && std::size_t(max_tokens) < tokens.size()) tokens = tokens.first(std::size_t(max_tokens));
        for (std::size_t i = 0; i < tokens.size(); ++i)
            ane::require(tokens[i] < c.vocab, data_path, ": token ", i, " has id ", tokens[i],
                         ", outside the model's vocabulary of ", c.vocab);
        std::unique_ptr<ane::Tokenizer> tok;
        std::optional<ane::ByteCounter> bytes;
        if (!tokenizer_path.empty()) {
            tok = ane::load_tokenizer(tokenizer_path);
            ane::require(tok->vocab_size() == c.vocab, tokenizer_path, ": the tokenizer has ", tok->vocab_size(),
                         " tokens but the model's vocabulary is ", c.vocab);
            bytes.emplace(*tok, c.vocab);
        }
        const auto windows = ane::plan_eval_windows(tokens.size(), seq, stride);
        const ane::VocabMap map =
            compact ? ane::VocabMap::build(data.tokens(), c.vocab) : ane::VocabMap::identity(c.vocab);
        auto device = ane::make_device(device_name, threads);
        ane::Transformer model(ck.weights, *device, batch, map, /*for_training=*/false);
        ane::ProgressLine line(quiet ? 0 : (progress_flag ? 1 : -1));
        const auto t0 = std::chrono::steady_clock::now();
        const ane::EvalResult r = ane::evaluate_stream(model, tokens, windows, bytes ? &*bytes : nullptr,
                                                       [&](const ane::EvalProgress& p) {
            const double rate = p.tokens_done / std::max(p.seconds, 1e-9);
            char text[160];
            std::snprintf(text, sizeof(text), "evaluating %lld/%lld tokens  %.0f tok/s  ETA %s",
                          static_cast<long long>(p.tokens_done), static_cast<long long>(p.tokens_total), rate,
                          ane::format_duration((p.tokens_total - p.tokens_done) / std::max(rate, 1e-9)).c_str());
            line.update(text);
        });
        line.finish();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const char* softmax = compact ? "compact" : "full";
        if (json) {
            nlohmann::json j = {{"val_loss", r.val_loss()}, {"tokens", r.tokens}, {"bytes", r.bytes},
                                {"seq", seq}, {"stride", stride}, {"softmax", softmax},
                                {"vocab", map.compact_vocab()}, {"windows", windows.size()},
                                {"seconds", seconds}, {"tokens_per_second", r.tokens / std::max(seconds, 1e-9)}};
            j["val_bpb"] = bytes ? nlohmann::json(r.val_bpb()) : nlohmann::json(nullptr);
            std::printf("%s\n", j.dump().c_str());
            return 0;
        }
        std::printf("model: %s (%lld parameters)\n", model_path.c_str(), static_cast<long long>(c.params()));
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
