// `ane-convert info`: one screen (or one JSON object) about any file the suite reads.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/model_file.hpp"
#include "ane/token_file.hpp"
#include "ane/vocab_map.hpp"
#include "commands.hpp"

namespace ane::convert {

void add_info_command(CLI::App& app, InfoOptions& o) {
    auto* cmd = app.add_subcommand("info", "describe a model or token file (BLZT, GGUF, Hugging Face, llama2.c, raw or shard tokens)");
    cmd->add_option("file", o.path, "the file to describe")->required();
    cmd->add_flag("--json", o.json, "print one JSON object instead of text");
}

namespace {

using nlohmann::json;

json model_json(const std::string& path, FileKind kind) {
    const Checkpoint ck = load_model(path, {.merge_lora = false});
    const ModelConfig& c = ck.weights.config;
    json j = c;  // dim, hidden, heads, kv_heads, head_dim, seq, layers, vocab, ...
    j["format"] = file_kind_name(kind);
    j["params"] = c.params();
    if (kind == FileKind::Blzt) {
        j["version"] = ck.source_version;
        j["trailer"] = ck.had_trailer;
        j["metadata"] = ck.metadata;
        j["tokenizer_embedded"] = !ck.tokenizer_model.empty() || !ck.tokenizer_json.empty();
        if (ck.lora)
            j["lora"] = {{"rank", ck.lora->rank},
                         {"targets", lora_targets_string(ck.lora->targets)},
                         {"params", ck.lora->params()}};
        const TrainState& s = ck.state;
        j["state"] = {{"step", s.step},         {"total_steps", s.total_steps}, {"lr", s.lr},
                      {"loss", s.loss},         {"cum_train_ms", s.cum_train_ms}, {"cum_wall_ms", s.cum_wall_ms},
                      {"cum_steps", s.cum_steps}, {"adam_t", s.adam_t}};
    }
    json tensors = json::array();
    ck.weights.for_each([&](const std::string& name, const Tensor& t) {
        tensors.push_back({{"name", name}, {"dtype", "f32"}, {"shape", t.shape()}});
    });
    j["tensors"] = tensors;
    return j;
}

json gguf_json(const std::string& path) {
    const GgufFile f(path);
    json j;
    if (!f.tensors().empty()) {
        const Checkpoint ck = read_gguf_model(path);
        j = ck.weights.config;
        j["params"] = ck.weights.config.params();
    }
    j["format"] = "gguf";
    j["version"] = f.version();
    json meta = json::object();
    for (const auto& [k, v] : f.metadata()) meta[k] = v.summary();
    j["metadata"] = meta;
    json tensors = json::array();
    for (const auto& t : f.tensors())
        tensors.push_back({{"name", t.name}, {"dtype", ggml::type_name(t.type)}, {"shape", t.shape()}});
    j["tensors"] = tensors;
    return j;
}

json tokens_json(const std::string& path) {
    const TokenFile f(path);
    const auto tokens = f.tokens();
    const std::uint32_t max_id = f.max_id();
    require(max_id < (1u << 26), path, ": token id ", max_id, " is beyond any vocabulary");
    const VocabMap map = VocabMap::build(tokens, int(max_id) + 1);
    std::uint32_t min_id = max_id;
    for (std::size_t i = 0; i < tokens.size(); ++i) min_id = std::min(min_id, tokens[i]);
    const TokenSplit split = split_train_val(f.size());
    json j;
    j["format"] = std::string("tokens-") + token_format_name(f.format());
    j["tokens"] = f.size();
    j["min_id"] = min_id;
    j["max_id"] = max_id;
    j["distinct_ids"] = map.compact_vocab();
    j["train_tokens"] = split.train_tokens;
    j["val_tokens"] = split.val_tokens;
    return j;
}

void print_model(const json& j) {
    std::printf("format: %s", j["format"].get<std::string>().c_str());
    if (j.contains("version")) std::printf(" v%d%s", j["version"].get<int>(), j.value("trailer", false) ? " with anetrain trailer" : "");
    std::printf("\nmodel: dim %d, hidden %d, heads %d, kv_heads %d, head_dim %d, layers %d, vocab %d, seq %d\n",
                j["dim"].get<int>(), j["hidden"].get<int>(), j["heads"].get<int>(), j["kv_heads"].get<int>(),
                j["head_dim"].get<int>(), j["layers"].get<int>(), j["vocab"].get<int>(), j["seq"].get<int>());
    std::printf("       rope_theta %g, norm_eps %g, %s classifier, residual_scale %g\n", j["rope_theta"].get<double>(),
                j["norm_eps"].get<double>(), j["tied"].get<bool>() ? "tied" : "untied",
                j["residual_scale"].get<double>());
    std::string extras;
    const auto add = [&](const std::string& what) { extras += (extras.empty() ? "" : ", ") + what; };
    if (j.value("attention_bias", false)) add("q/k/v biases (Qwen2)");
    if (j.value("qk_norm", false)) add("QK-norm (Qwen3)");
    if (j.contains("rope_scaling")) add("llama3 rope scaling, factor " + j["rope_scaling"]["factor"].dump());
    if (!extras.empty()) std::printf("       %s\n", extras.c_str());
    std::printf("params: %lld (%.2fM)\n", j["params"].get<long long>(), j["params"].get<double>() / 1e6);
    if (j.contains("state")) {
        const json& s = j["state"];
        std::printf("run: step %d of %d, lr %g, loss %g, adam_t %d, %d steps, %.1f s training\n",
                    s["step"].get<int>(), s["total_steps"].get<int>(), s["lr"].get<double>(), s["loss"].get<double>(),
                    s["adam_t"].get<int>(), s["cum_steps"].get<int>(), s["cum_train_ms"].get<double>() / 1000.0);
    }
    if (j["format"] == "blzt" && !j["metadata"].empty()) std::printf("metadata: %s\n", j["metadata"].dump().c_str());
    if (j.value("tokenizer_embedded", false)) std::printf("tokenizer: embedded SentencePiece model\n");
    if (j.contains("lora"))
        std::printf("LoRA adapters: rank %d on %s, %lld parameters (not merged; ane-convert merge-lora folds them in)\n",
                    j["lora"]["rank"].get<int>(), j["lora"]["targets"].get<std::string>().c_str(),
                    j["lora"]["params"].get<long long>());
    std::printf("tensors:\n");
    const int layers = j["layers"].get<int>();
    for (const auto& t : j["tensors"]) {
        const std::string name = t["name"].get<std::string>();
        if (name.rfind("layers.", 0) == 0 && name.rfind("layers.0.", 0) != 0) continue;
        std::string shape;
        for (const auto& d : t["shape"]) shape += (shape.empty() ? "" : " x ") + std::to_string(d.get<long long>());
        std::printf("  %-18s %s [%s]\n", name.c_str(), t["dtype"].get<std::string>().c_str(), shape.c_str());
    }
    if (layers > 1) std::printf("  (layers.1 to layers.%d: the same as layers.0)\n", layers - 1);
}

void print_tokens(const json& j) {
    std::printf("format: %s\n", j["format"].get<std::string>().c_str());
    std::printf("tokens: %zu (90/10 split: %zu train, %zu validation)\n", j["tokens"].get<std::size_t>(),
                j["train_tokens"].get<std::size_t>(), j["val_tokens"].get<std::size_t>());
    std::printf("ids: %d to %d, %d distinct\n", j["min_id"].get<int>(), j["max_id"].get<int>(),
                j["distinct_ids"].get<int>());
}

}  // namespace

int run_info(const InfoOptions& o) {
    const FileKind kind = detect_file_kind(o.path);
    json j;
    switch (kind) {
        case FileKind::Blzt:
        case FileKind::Llama2c:
        case FileKind::HuggingFace:
        case FileKind::Artifact: j = model_json(o.path, kind); break;
        case FileKind::Gguf: j = gguf_json(o.path); break;
        case FileKind::TokenShard:
        case FileKind::TokenRaw: j = tokens_json(o.path); break;
        case FileKind::Unknown: throw error(o.path, ": not a file the suite reads (BLZT, GGUF, Hugging Face, llama2.c, token file)");
    }
    j["path"] = o.path;
    std::uintmax_t bytes = 0;
    if (std::filesystem::is_directory(o.path)) {
        for (const auto& e : std::filesystem::recursive_directory_iterator(o.path))
            if (e.is_regular_file()) bytes += e.file_size();
    } else {
        bytes = std::filesystem::file_size(o.path);
    }
    j["bytes"] = bytes;
    if (o.json) {
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("file: %s (%zu bytes)\n", o.path.c_str(), j["bytes"].get<std::size_t>());
    if (kind == FileKind::TokenShard || kind == FileKind::TokenRaw) {
        print_tokens(j);
    } else if (kind == FileKind::Gguf && !j.contains("dim")) {
        std::printf("format: gguf v%d, no tensors (a vocabulary-only file)\nmetadata:\n", j["version"].get<int>());
        for (const auto& [k, v] : j["metadata"].items()) std::printf("  %s = %s\n", k.c_str(), v.get<std::string>().c_str());
    } else {
        print_model(j);
        if (kind == FileKind::Gguf) {
            std::printf("metadata:\n");
            for (const auto& [k, v] : j["metadata"].items())
                std::printf("  %s = %s\n", k.c_str(), v.get<std::string>().c_str());
        }
    }
    return 0;
}

}  // namespace ane::convert
