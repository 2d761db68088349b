// ane-generate: text from a prompt with a KV cache, from any model file the suite reads.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <nlohmann/json.hpp>

#include "ane/chat_template.hpp"
#include "ane/cli.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/file_checks.hpp"
#include "ane/file_io.hpp"
#include "ane/generate.hpp"
#include "ane/model/inference_weights.hpp"
#include "ane/model_file.hpp"
#include "ane/model_tokenizer.hpp"
#include "ane/runtime.hpp"
#include "ane/tokenizer.hpp"
#include "ane/tool_main.hpp"

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-generate: generate text from a prompt (KV cache; greedy, top-k, top-p sampling)"};
    app.set_version_flag("--version", std::string("ane-generate ") + ANE_VERSION);
    std::string model_path, prompt, prompt_file, tokenizer_path, weights_type, device_name = "cpu", ane_mode = "full", gemm = "auto", precision = "fp32";
    int n = 256, threads = 0, context = 0, parallel = 8;
    std::string kv_cache = "f16";
    ane::SamplerConfig sc;
    bool seed_given = false, chat = false, no_think = false;
    std::string system_prompt;
    ane::Verbosity verbosity;
    namespace r = ane::range;
    app.add_option("model", model_path, "any model file: BLZT, GGUF, artifact, Hugging Face, llama2.c")->required();
    auto* prompt_opt = app.add_option("-p,--prompt", prompt, "the prompt ('-' reads it from stdin); without one, text starts from BOS");
    app.add_option("--prompt-file", prompt_file, "one prompt per line ('-' reads stdin); writes one JSON object per line");
    app.add_option("--parallel", parallel,
                   "--prompt-file: prompts decoded together, one token of each per step in one product (default 8; "
                   "each holds its own KV cache)")
        ->check(r::between(1, 256));
    app.add_option("-n,--n-predict", n, "most tokens to generate (default 256)")->check(r::between(0, 1 << 24));
    app.add_option("-t,--tokenizer", tokenizer_path,
                   "SentencePiece .model, llama2.c tokenizer.bin, a GGUF vocabulary or a tokenizer.json (default: the "
                   "model's own)");
    app.add_flag("--chat", chat,
                 "instruct models: the prompt is a user message in the model's chat template (ChatML, Qwen3, Llama 3; "
                 "from its tokenizer_config.json) and the reply stops at the end of the turn; without --prompt each "
                 "line of stdin is a turn of one conversation");
    app.add_option("--system", system_prompt, "--chat: a system message");
    app.add_flag("--no-think", no_think, "--chat with Qwen3: reply without a <think> block");
    app.add_option("--temperature", sc.temperature, "0 = greedy (default 0.8)")->check(r::between(0, 100));
    app.add_option("--top-k", sc.top_k, "keep the k most likely tokens, 0 = all (default 40)")->check(r::non_negative());
    app.add_option("--top-p", sc.top_p, "nucleus: the smallest set with this much probability, 1 = off (default 0.9)")
        ->check(r::between(0, 1, true));
    app.add_option("--repeat-penalty", sc.repeat_penalty, "divide positive logits of recent tokens (default 1 = off)")
        ->check(r::between(0, 100, true));
    app.add_option("--repeat-last-n", sc.repeat_window, "how many recent tokens the penalty sees (default 64)")
        ->check(r::non_negative());
    app.add_option("--seed", sc.seed, "sampling seed (default: the time)")->each([&](const std::string&) { seed_given = true; });
    app.add_option("--ctx", context, "context length (default: the model's)")->check(r::between(1, 1 << 20));
    app.add_option("--kv-cache", kv_cache, "what the key/value cache stores: f16 (default, as llama.cpp) or f32")
        ->check(CLI::IsMember({"f16", "f32"}));
    ane::add_weights_flag(app, weights_type);
    ane::add_device_flags(app, {device_name, ane_mode, gemm, precision});
    app.add_option("--threads", threads, "threads (default 0: all cores)")->check(r::between(0, 4096));
    ane::add_verbosity_flags(app, verbosity);
    app.footer("Text goes to stdout; the prompt and generation speeds to stderr (not with -q).");
    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-generate")) return *code;
    verbosity.apply();
    if (!seed_given) sc.seed = std::uint64_t(std::time(nullptr));
    return ane::run_tool("ane-generate", [&] {
        ane::require_usage(prompt_file.empty() || prompt_opt->count() == 0, "give --prompt or --prompt-file, not both");
        ane::require_usage(chat || (system_prompt.empty() && !no_think), "--system and --no-think need --chat");
        ane::require_usage(!chat || prompt_file.empty(), "--chat takes --prompt or turns on stdin, not --prompt-file");
        ane::check_device(device_name);
        const ane::DeviceOptions device_opts = ane::device_options(threads, ane_mode, gemm, precision);
        const std::optional<ane::ggml::Type> weights_as = ane::weight_type_for_device(weights_type, device_name);
        ane::FileChecks files(false);
        files.input(model_path, "the model");
        files.input(tokenizer_path, "--tokenizer");
        if (prompt == "-") files.input("-", "--prompt -");
        files.input(prompt_file, "--prompt-file");
        std::string prompts;  // read before the model loads: a wrong --prompt-file fails at once
        if (!prompt_file.empty()) prompts = ane::read_text_file(prompt_file);
        const ane::InferenceModel model = ane::load_inference_model(model_path, weights_as);
        const ane::Checkpoint& ck = model.checkpoint;
        const auto tok = ane::model_tokenizer(tokenizer_path, ck, model_path, /*required=*/true);
        const int vocab = ck.weights.config.vocab;
        auto device = ane::make_device(device_name, device_opts);
        const int ctx = context > 0 ? context : ck.weights.config.seq;
        // One KV cache per prompt decoded together: at most --parallel, at most the file's prompts.
        int prompt_lines = 0;
        {
            std::istringstream in(prompts);
            for (std::string line; std::getline(in, line);) prompt_lines += !line.empty();
        }
        const int sequences = prompt_file.empty() ? 1 : std::max(1, std::min(parallel, prompt_lines));
        const ane::KvCache kv = ane::parse_kv_cache(kv_cache);
        ane::Decoder decoder(model.weights, *device, ctx, 512, sequences, kv);
        std::vector<int> stops;
        if (tok->eos_id() >= 0) stops.push_back(tok->eos_id());
        if (tok->bos_id() >= 0) stops.push_back(tok->bos_id());  // llama2.c: BOS delimits sequences
        std::optional<ane::ChatTemplate> chat_template;
        if (chat) {
            chat_template = ane::model_chat_template(ck, model_path, tokenizer_path);
            const auto end = tok->encode(chat_template->end_of_turn);
            ane::require(end.size() == 1, model_path, ": its tokenizer has no single token ", chat_template->end_of_turn,
                         " to end a chat turn");
            stops.push_back(end[0]);
        }

        auto encode_prompt = [&](const std::string& text) {
            std::vector<std::int32_t> ids;
            if (tok->bos_id() >= 0 && !chat) ids.push_back(tok->bos_id());  // a chat template writes its own
            for (int id : tok->encode(text)) ids.push_back(id);
            ane::require(!ids.empty(), "the prompt is empty and the vocabulary has no BOS token to start from");
            ane::require(int(ids.size()) < ctx, "the prompt has ", ids.size(), " tokens; the context holds ", ctx);
            return ids;
        };
        auto run = [&](const std::string& text, bool stream) {
            decoder.reset();
            ane::Sampler sampler(sc, vocab);
            const auto ids = encode_prompt(text);
            int prev = ids.back();
            std::string completion;
            const ane::GenerateResult r = ane::generate(decoder, sampler, ids, n, stops, [&](int id) {
                const std::string piece = tok->token_text(prev, id);
                prev = id;
                completion += piece;
                if (stream) {
                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                    std::fflush(stdout);
                }
            });
            return std::tuple{ids, completion, r};
        };

        if (!prompt_file.empty()) {
            std::istringstream in(prompts);
            std::vector<std::string> lines;
            std::vector<std::vector<std::int32_t>> encoded;
            for (std::string line; std::getline(in, line);) {
                if (line.empty()) continue;
                lines.push_back(line);
                encoded.push_back(encode_prompt(line));
            }
            // Each prompt's text, built from its tokens as they come (one line each at the end).
            std::vector<std::string> completions(lines.size());
            std::vector<int> prev(encoded.size());
            for (std::size_t i = 0; i < encoded.size(); ++i) prev[i] = encoded[i].back();
            // Printed in the order of the file, each as soon as it and every line before it are done.
            std::vector<bool> done(lines.size(), false);
            std::vector<std::size_t> generated(lines.size(), 0);
            std::size_t printed = 0;
            ane::generate_batch(
                decoder, sc, vocab, encoded, n, stops,
                [&](std::size_t i, int id) {
                    completions[i] += tok->token_text(prev[i], id);
                    prev[i] = id;
                },
                [&](std::size_t i, const ane::GenerateResult& r) {
                    done[i] = true;
                    generated[i] = r.generated.size();
                    for (; printed < lines.size() && done[printed]; ++printed) {
                        std::printf("%s\n", nlohmann::json{{"prompt", lines[printed]},
                                                           {"completion", completions[printed]},
                                                           {"prompt_tokens", encoded[printed].size()},
                                                           {"generated_tokens", generated[printed]}}
                                                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                                .c_str());
                        std::fflush(stdout);
                    }
                });
            return 0;
        }
        if (chat) {
            std::vector<ane::ChatMessage> messages;
            if (!system_prompt.empty()) messages.push_back({"system", system_prompt});
            const auto reply = [&](const std::string& user) {
                messages.push_back({"user", user});
                const auto [ids, completion, r] =
                    run(chat_template->render(messages, /*add_generation_prompt=*/true, !no_think), true);
                std::printf("\n");
                std::fflush(stdout);
                messages.push_back({"assistant", completion});
                if (!verbosity.quiet)
                    std::fprintf(stderr, "prompt: %zu tokens; generated: %zu tokens%s\n", ids.size(), r.generated.size(),
                                 r.context_full ? " (context full)" : r.stopped_at_end_token ? " (end of turn)" : "");
            };
            if (prompt_opt->count() > 0 && prompt != "-") {
                ane::require(!prompt.empty(), "the prompt is empty");
                reply(prompt);
            } else {
                for (std::string line; std::getline(std::cin, line);)
                    if (!line.empty()) reply(line);
            }
            return 0;
        }
        std::string text = prompt == "-" ? ane::read_text_file("-") : prompt;
        // No --prompt: unconditional text from BOS, as llama2.c does; a given but empty prompt is a mistake.
        if (prompt_opt->count() > 0 || tok->bos_id() < 0) ane::require(!text.empty(), "the prompt is empty");
        if (!text.empty() && prompt != "-") {
            std::fwrite(text.data(), 1, text.size(), stdout);
        }
        const auto [ids, completion, r] = run(text, true);
        std::printf("\n");
        std::fflush(stdout);
        if (!verbosity.quiet)
            std::fprintf(stderr, "prompt: %zu tokens, %.1f tokens/s; generated: %zu tokens, %.1f tokens/s%s\n", ids.size(),
                     ids.size() / std::max(r.prompt_seconds, 1e-9), r.generated.size(),
                     r.generated.size() / std::max(r.generate_seconds, 1e-9),
                     r.context_full ? " (context full)" : r.stopped_at_end_token ? " (end of text)" : "");
        if (verbosity.verbose)
            std::fprintf(stderr, "weights: %s\nkv cache: %s\ndevice: %s\n%s", model.weights.summary().c_str(),
                         ane::kv_cache_name(kv), device->describe().c_str(),
                         device->kernel_report().c_str());
        return 0;
    });
}
