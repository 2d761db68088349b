// ane-generate: text from a prompt with a KV cache, from any model file the suite reads.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "ane/cli.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/generate.hpp"
#include "ane/model_file.hpp"
#include "ane/runtime.hpp"
#include "ane/score_tokenizer.hpp"
#include "ane/tokenizer.hpp"
#include "ane/tool_main.hpp"

namespace {

// --tokenizer (a SentencePiece .model or llama2.c's tokenizer.bin), else the vocabulary the
// model file carries.
std::unique_ptr<ane::Tokenizer> pick_tokenizer(const std::string& path, const ane::Checkpoint& ck,
                                               const std::string& model_path) {
    const int vocab = ck.weights.config.vocab;
    if (!path.empty()) {
        try {
            return ane::load_sentencepiece(path);
        } catch (const ane::Error&) {
            return ane::load_llama2c_tokenizer(path, vocab);
        }
    }
    if (!ck.tokenizer_model.empty())
        return ane::sentencepiece_from_bytes(std::string(ck.tokenizer_model.begin(), ck.tokenizer_model.end()),
                                             model_path + " (embedded tokenizer)");
    if (!ck.tokenizer_gguf.empty())
        return ane::tokenizer_from_gguf(ane::GgufFile(ck.tokenizer_gguf, model_path + " (embedded vocabulary)"));
    throw ane::error(model_path, ": carries no vocabulary; give --tokenizer (a SentencePiece .model or llama2.c tokenizer.bin)");
}

}  // namespace

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-generate: generate text from a prompt (KV cache; greedy, top-k, top-p sampling)"};
    app.set_version_flag("--version", std::string("ane-generate ") + ANE_VERSION);
    std::string model_path, prompt, prompt_file, tokenizer_path, device_name = "cpu";
    int n = 256, threads = 0, context = 0;
    ane::SamplerConfig sc;
    bool seed_given = false;
    app.add_option("model", model_path, "any model file: BLZT, GGUF, artifact, Hugging Face, llama2.c")->required();
    auto* prompt_opt = app.add_option("-p,--prompt", prompt, "the prompt ('-' reads it from stdin); without one, text starts from BOS");
    app.add_option("--prompt-file", prompt_file, "one prompt per line; writes one JSON object per line");
    app.add_option("-n,--n-predict", n, "most tokens to generate (default 256)");
    app.add_option("-t,--tokenizer", tokenizer_path, "SentencePiece .model or llama2.c tokenizer.bin (default: the model's own)");
    app.add_option("--temperature", sc.temperature, "0 = greedy (default 0.8)");
    app.add_option("--top-k", sc.top_k, "keep the k most likely tokens, 0 = all (default 40)");
    app.add_option("--top-p", sc.top_p, "nucleus: the smallest set with this much probability, 1 = off (default 0.9)");
    app.add_option("--repeat-penalty", sc.repeat_penalty, "divide positive logits of recent tokens (default 1 = off)");
    app.add_option("--repeat-last-n", sc.repeat_window, "how many recent tokens the penalty sees (default 64)");
    app.add_option("--seed", sc.seed, "sampling seed (default: the time)")->each([&](const std::string&) { seed_given = true; });
    app.add_option("--ctx", context, "context length (default: the model's)");
    app.add_option("--device", device_name, "compute backend (default cpu)");
    app.add_option("--threads", threads, "threads (default: all cores)");
    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-generate")) return *code;
    if (!seed_given) sc.seed = std::uint64_t(std::time(nullptr));
    return ane::run_tool("ane-generate", [&] {
        ane::require(prompt_file.empty() || prompt.empty(), "give --prompt or --prompt-file, not both");
        const ane::Checkpoint ck = ane::load_model(model_path);
        const auto tok = pick_tokenizer(tokenizer_path, ck, model_path);
        const int vocab = ck.weights.config.vocab;
        ane::require(tok->vocab_size() <= vocab, "the tokenizer has ", tok->vocab_size(),
                     " tokens, more than the model's vocabulary of ", vocab);
        auto device = ane::make_device(device_name, threads);
        const int ctx = context > 0 ? context : ck.weights.config.seq;
        ane::Decoder decoder(ck.weights, *device, ctx);
        std::vector<int> stops;
        if (tok->eos_id() >= 0) stops.push_back(tok->eos_id());
        if (tok->bos_id() >= 0) stops.push_back(tok->bos_id());  // llama2.c: BOS delimits sequences

        auto encode_prompt = [&](const std::string& text) {
            std::vector<std::int32_t> ids;
            if (tok->bos_id() >= 0) ids.push_back(tok->bos_id());
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
            std::ifstream in(prompt_file);
            ane::require(bool(in), prompt_file, ": cannot open");
            for (std::string line; std::getline(in, line);) {
                if (line.empty()) continue;
                const auto [ids, completion, r] = run(line, false);
                std::printf("%s\n", nlohmann::json{{"prompt", line}, {"completion", completion},
                                                   {"prompt_tokens", ids.size()}, {"generated_tokens", r.generated.size()}}
                                        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                        .c_str());
                std::fflush(stdout);
            }
            return 0;
        }
        std::string text = prompt;
        if (prompt == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        // No --prompt: unconditional text from BOS, as llama2.c does; a given but empty prompt is a mistake.
        if (prompt_opt->count() > 0 || tok->bos_id() < 0) ane::require(!text.empty(), "the prompt is empty");
        if (!text.empty() && prompt != "-") {
            std::fwrite(text.data(), 1, text.size(), stdout);
        }
        const auto [ids, completion, r] = run(text, true);
        std::printf("\n");
        std::fflush(stdout);
        std::fprintf(stderr, "prompt: %zu tokens, %.1f tokens/s; generated: %zu tokens, %.1f tokens/s%s\n", ids.size(),
                     ids.size() / std::max(r.prompt_seconds, 1e-9), r.generated.size(),
                     r.generated.size() / std::max(r.generate_seconds, 1e-9),
                     r.context_full ? " (context full)" : r.stopped_at_end_token ? " (end of text)" : "");
        return 0;
    });
}
