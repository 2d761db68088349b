#include "ane/formats/safetensors.hpp"

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>

#include "ane/error.hpp"
#include "ane/json_fields.hpp"
#include "ane/half.hpp"

namespace fs = std::filesystem;

namespace ane {

bool looks_like_safetensors(const std::uint8_t* data, std::size_t size) {
    if (size < 10) return false;
    std::uint64_t n = 0;
    std::memcpy(&n, data, 8);
    return n >= 2 && n <= size - 8 && data[8] == '{';
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
    ByteReader r(file_.bytes(), path);
    const auto n = r.get<std::uint64_t>("safetensors header length");
    require(n <= r.remaining() && n < (1ull << 30), path, ": safetensors header length ", n,
            " runs past the end of the file");
    const auto* p = reinterpret_cast<const char*>(r.take(n, "safetensors header"));
    const nlohmann::json header = nlohmann::json::parse(p, p + n, nullptr, false);
    require(!header.is_discarded() && header.is_object(), path, ": safetensors header is not a JSON object");
    data_ = file_.data() + 8 + n;
    const std::uint64_t data_size = file_.size() - 8 - n;
    for (const auto& [name, v] : header.items()) {
        if (name == "__metadata__") {
            metadata_ = v;
            continue;
        }
        require(v.is_object() && v.contains("dtype") && v["dtype"].is_string() && v.contains("shape") &&
                    v["shape"].is_array() && v.contains("data_offsets") && v["data_offsets"].is_array() &&
                    v["data_offsets"].size() == 2,
                path, ": tensor '", name, "' has a malformed header entry");
        SafetensorInfo t;
        t.name = name;
        t.dtype = v["dtype"].get<std::string>();
        std::uint64_t numel = 1;
        for (const auto& d : v["shape"]) {
            require(d.is_number_unsigned() && d.get<std::uint64_t>() < (1ull << 40), path, ": tensor '", name,
                    "' has a bad shape");
            t.shape.push_back(d.get<std::int64_t>());
            numel *= d.get<std::uint64_t>();
            require(numel < (1ull << 40), path, ": tensor '", name, "' is implausibly large");
        }
        require(v["data_offsets"][0].is_number_unsigned() && v["data_offsets"][1].is_number_unsigned(), path,
                ": tensor '", name, "' has bad data offsets");
        t.begin = v["data_offsets"][0].get<std::uint64_t>();
        t.end = v["data_offsets"][1].get<std::uint64_t>();
        require(t.begin <= t.end && t.end <= data_size, path, ": tensor '", name, "' bytes [", t.begin, ", ", t.end,
                ") lie outside the ", data_size, "-byte data section");
        const std::uint64_t width = t.dtype == "F32" ? 4 : (t.dtype == "F16" || t.dtype == "BF16") ? 2 : 0;
        if (width) require(t.end - t.begin == numel * width, path, ": tensor '", name, "' has ", t.end - t.begin,
                           " bytes, its shape and ", t.dtype, " need ", numel * width);
        tensors_.push_back(std::move(t));
    }
}

const SafetensorInfo* SafetensorsFile::find(const std::string& name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

Tensor SafetensorsFile::read(const SafetensorInfo& info) const {
    Tensor t(info.shape);
    const std::uint8_t* src = data_ + info.begin;
    const std::size_t n = std::size_t(t.numel());
    if (info.dtype == "F32") {
        std::memcpy(t.data(), src, n * 4);
    } else if (info.dtype == "F16" || info.dtype == "BF16") {
        const bool bf = info.dtype == "BF16";
        for (std::size_t i = 0; i < n; ++i) {
            std::uint16_t h;
            std::memcpy(&h, src + 2 * i, 2);
            t[std::int64_t(i)] = bf ? bf16_to_float(h) : fp16_to_float(h);
        }
    } else {
        throw error(path(), ": tensor '", info.name, "' has dtype ", info.dtype, " (only F32, F16, BF16 are read)");
    }
    file_.release(src, info.end - info.begin);
    return t;
}

namespace {

// A layer's Hugging Face tensor names beside ours, in the order export writes them.
const std::pair<const char*, const char*> kHfLayerTensors[] = {
    {"self_attn.q_proj.weight", "wq"},   {"self_attn.k_proj.weight", "wk"},
    {"self_attn.v_proj.weight", "wv"},   {"self_attn.o_proj.weight", "wo"},
    {"mlp.gate_proj.weight", "w1"},      {"mlp.down_proj.weight", "w2"},
    {"mlp.up_proj.weight", "w3"},        {"input_layernorm.weight", "rms_att"},
    {"post_attention_layernorm.weight", "rms_ffn"},
    {"self_attn.q_proj.bias", "bq"},     {"self_attn.k_proj.bias", "bk"},
    {"self_attn.v_proj.bias", "bv"},     {"self_attn.q_norm.weight", "q_norm"},
    {"self_attn.k_norm.weight", "k_norm"}};

ModelConfig config_from_hf(const nlohmann::json& j, const std::string& where) {
    auto integer = [&](const char* key, std::optional<int> fallback = std::nullopt) {
        if (!j.contains(key) || j[key].is_null()) {
            require(fallback.has_value(), where, ": missing '", key, "'");
            return *fallback;
        }
        return json_int(j[key], where, key, 0, INT32_MAX);
    };
    auto number = [&](const char* key, double fallback) {
        return j.contains(key) && !j[key].is_null() ? json_number(j[key], where, key) : fallback;
    };
    std::string arch = "?";
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
        arch = json_string(j["architectures"][0], where, "architectures[0]");
    else if (j.contains("model_type"))
        arch = json_string(j["model_type"], where, "model_type");
    static const std::set<std::string> known = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                                "Qwen3ForCausalLM", "llama", "mistral", "qwen2", "qwen3"};
    require(known.count(arch), where, ": architecture '", arch,
            "' is not supported (Llama, Mistral, Qwen2 and Qwen3 causal LMs are)");
    const bool qwen2 = arch == "Qwen2ForCausalLM" || arch == "qwen2", qwen3 = arch == "Qwen3ForCausalLM" || arch == "qwen3";
    ModelConfig c;
    c.name = j.contains("_name_or_path") && j["_name_or_path"].is_string() ? j["_name_or_path"].get<std::string>() : arch;
    c.dim = integer("hidden_size");
    c.hidden = integer("intermediate_size");
    c.layers = integer("num_hidden_layers");
    c.heads = integer("num_attention_heads");
    c.kv_heads = integer("num_key_value_heads", c.heads);
    c.head_dim = integer("head_dim", c.heads ? c.dim / c.heads : 0);
    c.vocab = integer("vocab_size");
    c.seq = integer("max_position_embeddings", 2048);
    c.rope_theta = number("rope_theta", 10000.0);
    c.norm_eps = number("rms_norm_eps", 1e-6);
    auto flag = [&](const char* key) {
        if (!j.contains(key) || j[key].is_null()) return false;
        require(j[key].is_boolean(), where, ": ", key, " must be true or false");
        return j[key].get<bool>();
    };
    c.tied = flag("tie_word_embeddings");
    c.residual_scale = 1.0;
    if (j.contains("rope_scaling")) c.rope_llama3 = llama3_rope_from_json(j["rope_scaling"], where);
    // Qwen2 always has q/k/v biases (and none on o); Llama's and Qwen3's attention_bias puts one
    // on o_proj too, which this model does not have.
    require(!flag("attention_bias"), where, ": ", arch, " with attention_bias (a bias on o_proj as well) is not supported");
    require(!flag("mlp_bias"), where, ": MLP biases are not supported");
    require(!flag("use_sliding_window"), where, ": sliding-window attention (use_sliding_window) is not supported");
    // Mistral's sliding window: attention within the window is exact, so the context stops there.
    const bool mistral = arch == "MistralForCausalLM" || arch == "mistral";
    if (mistral && j.contains("sliding_window") && !j["sliding_window"].is_null())
        c.seq = std::min(c.seq, json_int(j["sliding_window"], where, "sliding_window", 1, INT32_MAX));
    c.attention_bias = qwen2;
    c.qk_norm = qwen3;
    c.validate(where);
    return c;
}

}  // namespace

Checkpoint read_hf_model(const std::string& path) {
    fs::path p(path);
    fs::path dir = fs::is_directory(p) ? p : p.parent_path();
    if (dir.empty()) dir = ".";
    const fs::path config_path = dir / "config.json";
    require(fs::exists(config_path), path, ": no config.json beside the weights (needed for the head counts)");
    const nlohmann::json cj = nlohmann::json::parse(read_text_file(config_path.string()), nullptr, false);
    require(!cj.is_discarded() && cj.is_object(), config_path.string(), ": not valid JSON");
    const ModelConfig c = config_from_hf(cj, config_path.string());

    // The shard files.
    std::vector<std::string> shards;
    fs::path index = fs::is_directory(p) ? dir / "model.safetensors.index.json" : p;
    if (fs::is_directory(p) && !fs::exists(index)) index = dir / "model.safetensors";
    if (index.string().ends_with(".index.json")) {
        const nlohmann::json ij = nlohmann::json::parse(read_text_file(index.string()), nullptr, false);
        require(!ij.is_discarded() && ij.contains("weight_map") && ij["weight_map"].is_object(), index.string(),
                ": no weight_map");
        std::set<std::string> files;
        for (const auto& [name, file] : ij["weight_map"].items()) {
            require(file.is_string() && file.get<std::string>().find('/') == std::string::npos, index.string(),
                    ": bad shard name for '", name, "'");
            files.insert(file.get<std::string>());
        }
        for (const auto& f : files) shards.push_back((dir / f).string());
    } else {
        require(fs::exists(index), path, ": no model.safetensors or model.safetensors.index.json");
        shards.push_back(index.string());
    }

    std::uint64_t shard_bytes = 0;
    for (const auto& shard : shards) {
        std::error_code ec;
        const auto n = fs::file_size(shard, ec);
        require(!ec, shard, ": cannot read its size: ", ec.message());
        shard_bytes += n;
    }
    require_plausible_size(c, shard_bytes, 2.0, config_path.string());  // F16/BF16 at the least

    Checkpoint ck;
    ck.weights = Weights::zeros(c);
    std::set<std::string> loaded;
    auto target = [&](const std::string& name) -> Tensor* {
        if (name == "model.embed_tokens.weight") return &ck.weights.embed;
        if (name == "model.norm.weight") return &ck.weights.rms_final;
        if (name == "lm_head.weight") return c.tied ? nullptr : &ck.weights.classifier;
        const std::string prefix = "model.layers.";
        if (name.rfind(prefix, 0) != 0) return nullptr;
        const auto dot = name.find('.', prefix.size());
        if (dot == std::string::npos) return nullptr;
        const std::string index_text = name.substr(prefix.size(), dot - prefix.size());
        if (index_text.empty() || index_text.find_first_not_of("0123456789") != std::string::npos) return nullptr;
        const int l = std::stoi(index_text);
        if (l >= c.layers) return nullptr;
        for (const auto& [hf, ours] : kHfLayerTensors)
            if (name.substr(dot + 1) == hf) return ck.weights.find("layers." + std::to_string(l) + "." + ours);
        return nullptr;
    };
    for (const auto& shard : shards) {
        const SafetensorsFile f(shard);
        for (const auto& info : f.tensors()) {
            if (c.tied && info.name == "lm_head.weight") continue;  // a tied copy
            if (info.name.find("rotary_emb.inv_freq") != std::string::npos) continue;  // a buffer, not a weight
            Tensor* dst = target(info.name);  // null too for an extra the config does not have
            require(dst != nullptr && !dst->empty(), shard, ": tensor '", info.name, "' is not part of a ",
                    c.name, " model as config.json describes it");
            require(info.shape == dst->shape(), shard, ": tensor '", info.name, "' is ", shape_string(info.shape),
                    ", config.json implies ", shape_string(dst->shape()));
            *dst = f.read(info);
            loaded.insert(info.name);
        }
    }
    const int expected = int(9 + layer_extra_tensor_names(c).size()) * c.layers + 2 + (c.tied ? 0 : 1);
    require(int(loaded.size()) == expected, path, ": found ", loaded.size(), " of the ", expected,
            " tensors the model needs");
    for (auto& L : ck.weights.layers) layer_rows_halves_to_interleaved(L, c);
    ck.metadata["source"] = {{"format", "hf"}, {"path", path}};
    ck.metadata["hf_config"] = cj;
    // The tokenizer travels with the model: tokenizer.model (SentencePiece) or tokenizer.json
    // (with tokenizer_config.json) from the same folder.
    for (auto [name, dst] : tokenizer_files(ck)) {
        const fs::path file = dir / name;
        if (name == "tokenizer.gguf" || !fs::exists(file)) continue;  // a GGUF vocabulary has no HF file
        const std::string bytes = read_text_file(file.string());
        dst->assign(bytes.begin(), bytes.end());
    }
    ck.state.total_steps = 0;
    return ck;
}

HfDtype parse_hf_dtype(const std::string& name) {
    if (name == "f32" || name == "float32") return HfDtype::F32;
    if (name == "f16" || name == "float16") return HfDtype::F16;
    if (name == "bf16" || name == "bfloat16") return HfDtype::BF16;
    throw error("unknown dtype '", name, "' (expected f32, f16 or bf16)");
}

void write_safetensors(AtomicWriter& w, const std::vector<SafetensorEntry>& tensors, HfDtype dtype,
                       const nlohmann::json& metadata) {
    const std::size_t width = dtype == HfDtype::F32 ? 4 : 2;
    const char* dname = dtype == HfDtype::F32 ? "F32" : dtype == HfDtype::F16 ? "F16" : "BF16";
    nlohmann::ordered_json header;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& e : tensors) {
        const std::uint64_t bytes = std::uint64_t(e.src->numel()) * width;
        header[e.name] = {{"dtype", dname}, {"shape", e.src->shape()}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    while ((8 + text.size()) % 8) text += ' ';  // keep the data 8-byte aligned, as the reference writer does
    w.put<std::uint64_t>(text.size());
    w.write(text.data(), text.size());
    std::vector<std::uint16_t> half;
    for (const auto& e : tensors) {
        Tensor copy;
        const Tensor* t = e.src;
        if (e.transform) {
            copy = *e.src;
            e.transform(copy);
            t = &copy;
        }
        if (dtype == HfDtype::F32) {
            w.write(t->data(), t->bytes());
            continue;
        }
        half.resize(std::size_t(t->numel()));
        if (dtype == HfDtype::F16)
            float_to_fp16(t->data(), half.data(), half.size());
        else
            float_to_bf16(t->data(), half.data(), half.size());
        w.write(half.data(), half.size() * 2);
    }
}

void write_safetensors(const std::string& path, const std::vector<SafetensorEntry>& tensors, HfDtype dtype,
                       const nlohmann::json& metadata) {
    AtomicWriter w(path);
    write_safetensors(w, tensors, dtype, metadata);
    w.commit();
}

void write_hf_model(const Checkpoint& ck, const std::string& dir, HfDtype dtype) {
    const ModelConfig& c = ck.weights.config;
    c.validate(dir);
    const std::string family = model_family(c, dir);
    fs::create_directories(dir);
    std::vector<SafetensorEntry> list;
    list.push_back({"model.embed_tokens.weight", &ck.weights.embed, {}});
    const float alpha = float(c.residual_scale);
    // Hugging Face has no residual scale: fold it into the branch outputs.
    std::function<void(Tensor&)> fold;
    if (alpha != 1.0f)
        fold = [alpha](Tensor& t) {
            for (auto& x : t.span()) x *= alpha;
        };
    for (int l = 0; l < c.layers; ++l) {
        const LayerWeights& L = ck.weights.layers[std::size_t(l)];
        for (const auto& [hf, ours] : kHfLayerTensors) {
            const Tensor& t = L.get(ours);
            if (t.empty()) continue;  // an extra this family does not have
            std::function<void(Tensor&)> transform;
            if (const int heads = rope_row_heads(c, ours); heads > 0)
                transform = [heads, hd = c.head_dim](Tensor& w) { rope_rows_interleaved_to_halves(w, heads, hd); };
            else if (std::string(ours) == "wo" || std::string(ours) == "w2")
                transform = fold;
            list.push_back({"model.layers." + std::to_string(l) + "." + hf, &t, transform});
        }
    }
    list.push_back({"model.norm.weight", &ck.weights.rms_final, {}});
    if (!c.tied) list.push_back({"lm_head.weight", &ck.weights.classifier, {}});
    // The folder is written as a whole or not at all: every file to its temporary and made
    // durable first, then all renamed into place (a full disk leaves the old folder intact).
    AtomicWriter weights((fs::path(dir) / "model.safetensors").string());
    write_safetensors(weights, list, dtype, {{"format", "pt"}});
    weights.finish();

    const char* torch_dtype = dtype == HfDtype::F32 ? "float32" : dtype == HfDtype::F16 ? "float16" : "bfloat16";
    const char* architecture = family == "qwen3"   ? "Qwen3ForCausalLM"
                               : family == "qwen2" ? "Qwen2ForCausalLM"
                                                   : "LlamaForCausalLM";
    nlohmann::ordered_json cfg = {{"architectures", {architecture}},
                                  {"model_type", family},
                                  {"hidden_size", c.dim},
                                  {"intermediate_size", c.hidden},
                                  {"num_hidden_layers", c.layers},
                                  {"num_attention_heads", c.heads},
                                  {"num_key_value_heads", c.kv_heads},
                                  {"head_dim", c.head_dim},
                                  {"vocab_size", c.vocab},
                                  {"max_position_embeddings", c.seq},
                                  {"rope_theta", c.rope_theta},
                                  {"rms_norm_eps", c.norm_eps},
                                  {"tie_word_embeddings", c.tied},
                                  {"hidden_act", "silu"},
                                  {"mlp_bias", false},
                                  {"torch_dtype", torch_dtype}};
    if (c.rope_llama3.factor != 0) cfg["rope_scaling"] = nlohmann::json(c)["rope_scaling"];  // the same object
    if (!c.attention_bias) cfg["attention_bias"] = false;  // Qwen2 has its q/k/v biases without the key
    if (family != "llama") cfg["use_sliding_window"] = false;
    const std::string text = cfg.dump(2) + "\n";
    AtomicWriter config((fs::path(dir) / "config.json").string());
    config.write(text.data(), text.size());
    config.finish();
    std::vector<std::unique_ptr<AtomicWriter>> tokenizer;
    for (auto [name, blob] : tokenizer_files(ck)) {
        if (blob->empty() || name == "tokenizer.gguf") continue;  // a GGUF vocabulary has no HF file
        tokenizer.push_back(std::make_unique<AtomicWriter>((fs::path(dir) / name).string()));
        tokenizer.back()->write(blob->data(), blob->size());
        tokenizer.back()->finish();
    }
    weights.publish();
    config.publish();
    for (auto& t : tokenizer) t->publish();
}

}  // namespace ane
