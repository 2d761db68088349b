#include "ane/checkpoint.hpp"

#include <bit>
#include <cstring>

#include "ane/checkpoint_trailer.hpp"
#include "ane/error.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/file_io.hpp"

namespace ane {

static_assert(std::endian::native == std::endian::little, "BLZT is little-endian; a big-endian port must swap");

std::uint64_t blzt_body_bytes(const ModelConfig& c) {
    const std::uint64_t floats = std::uint64_t(c.layers) * std::uint64_t(c.layer_params()) + std::uint64_t(c.dim) +
                                 std::uint64_t(c.vocab) * std::uint64_t(c.dim);
    return kBlztHeaderBytes + 12 * floats;
}

bool looks_like_blzt(const std::uint8_t* data, std::size_t size) {
    std::int32_t magic = 0;
    if (size < 4) return false;
    std::memcpy(&magic, data, 4);
    return magic == kBlztMagic;
}

namespace {

// Reads the header and turns it into a config; rejects anything a later offset computation
// could overflow on.
BlztHeader read_header(ByteReader& r, const std::string& path) {
    BlztHeader h;
    std::memcpy(&h, r.take(kBlztHeaderBytes, "the 96-byte BLZT header"), kBlztHeaderBytes);
    require(h.magic == kBlztMagic, path, ": not a BLZT checkpoint (bad magic)");
    require(h.version >= 2 && h.version <= 4, path, ": BLZT version ", h.version, " is not supported (2, 3, 4 are)");
    require(h.step >= 0 && h.step <= 10'000'000, path, ": header step ", h.step, " is out of range");
    require(h.adam_t >= 0 && h.adam_t <= 10'000'000, path, ": header adam_t ", h.adam_t, " is out of range");
    return h;
}

ModelConfig config_from_header(BlztHeader& h, const std::string& path) {
    if (h.version < 4 && h.kv_heads == 0 && h.head_dim == 0 && h.q_dim == 0) {
        // maderix v2/v3: MHA, head_dim = dim / heads (spec §6).
        require(h.n_heads > 0 && h.dim % h.n_heads == 0, path, ": v", h.version, " header: dim ", h.dim,
                " is not a multiple of n_heads ", h.n_heads);
        h.kv_heads = h.n_heads;
        h.head_dim = h.dim / h.n_heads;
        h.q_dim = h.dim;
    }
    ModelConfig c;
    c.name = "blzt";
    c.dim = h.dim;
    c.hidden = h.hidden_dim;
    c.heads = h.n_heads;
    c.kv_heads = h.kv_heads;
    c.head_dim = h.head_dim;
    c.seq = h.seq_len;
    c.layers = h.n_layers;
    c.vocab = h.vocab_size;
    c.residual_scale = 1.0;  // BLZT does not store α; like generate.py, assume a standard model
    c.validate(path);
    require(std::int64_t(h.q_dim) == std::int64_t(h.n_heads) * h.head_dim, path, ": header q_dim ", h.q_dim,
            " != n_heads ", h.n_heads, " x head_dim ", h.head_dim);
    return c;
}

TrainState state_from_header(const BlztHeader& h) {
    TrainState s;
    s.step = h.step;
    s.total_steps = h.total_steps;
    s.lr = h.lr;
    s.loss = h.loss;
    s.cum_compile_ms = h.cum_compile;
    s.cum_train_ms = h.cum_train;
    s.cum_wall_ms = h.cum_wall;
    s.cum_steps = h.cum_steps;
    s.cum_batches = h.cum_batches;
    s.adam_t = h.adam_t;
    return s;
}

void copy_floats(ByteReader& r, Tensor& t, const char* what, const MappedFile& file) {
    const std::uint8_t* src = r.take(t.bytes(), what);
    std::memcpy(t.data(), src, t.bytes());
    file.release(src, t.bytes());
}

void read_lora(Checkpoint& ck, const Trailer& t, const std::string& path) {
    const nlohmann::json& j = t.json["lora"];
    int rank = 0;
    std::string targets;
    try {
        rank = j.at("rank").get<int>();
        targets = j.at("targets").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        throw error(path, ": trailer 'lora' entry is malformed: ", e.what());
    }
    try {
        ck.lora = Lora::zeros(ck.weights.config, rank, parse_lora_targets(targets));
    } catch (const Error& e) {
        throw error(path, ": trailer LoRA: ", e.what());
    }
    auto fill = [&](const std::string& blob_name, Tensor& dst) {
        for (const auto& b : t.blobs)
            if (b.name == blob_name) {
                require(b.dtype == "f32" && b.shape == dst.shape(), path, ": trailer tensor '", blob_name,
                        "' should be f32 ", shape_string(dst.shape()));
                std::memcpy(dst.data(), b.bytes.data(), dst.bytes());
                return true;
            }
        return false;
    };
    ck.lora->for_each([&](const std::string& name, Tensor& dst) {
        require(fill("lora." + name, dst), path, ": trailer has LoRA rank ", rank, " but no '", "lora." + name, "'");
    });
    for (const auto& b : t.blobs) {
        if (b.name.rfind("lora_adam.", 0) != 0) continue;
        require(b.dtype == "f32" && !b.shape.empty(), path, ": trailer tensor '", b.name, "' should be f32");
        Tensor dst(b.shape);
        std::memcpy(dst.data(), b.bytes.data(), dst.bytes());
        ck.lora_adam[b.name.substr(std::string("lora_adam.").size())] = std::move(dst);
    }
}

void apply_trailer(Checkpoint& ck, const Trailer& t, const std::string& path, bool load_moments) {
    ck.had_trailer = true;
    ModelConfig& c = ck.weights.config;
    if (t.json.contains("config")) {
        ModelConfig stored;
        try {
            stored = t.json["config"].get<ModelConfig>();
        } catch (const Error& e) {
            throw error(path, ": trailer: ", e.what());
        } catch (const nlohmann::json::exception& e) {
            throw error(path, ": trailer config: ", e.what());
        }
        stored.validate(path + " (trailer config)");
        ModelConfig header_shape = c;
        header_shape.tied = stored.tied;  // what the header cannot say
        header_shape.attention_bias = stored.attention_bias;
        header_shape.qk_norm = stored.qk_norm;
        require(stored.same_shape(header_shape) && stored.seq == c.seq, path,
                ": trailer config disagrees with the BLZT header");
        c = stored;
    }
    if (t.json.contains("metadata")) ck.metadata = t.json["metadata"];
    auto find_blob = [&](const std::string& name) -> const TrailerBlob* {
        for (const auto& b : t.blobs)
            if (b.name == name) return &b;
        return nullptr;
    };
    auto load_tensor = [&](const std::string& name, const Shape& shape, Tensor& dst) {
        const TrailerBlob* b = find_blob(name);
        require(b != nullptr, path, ": the model's config needs a '", name, "' tensor, the trailer has none");
        require(b->dtype == "f32" && b->shape == shape, path, ": trailer tensor '", name, "' should be f32 ",
                shape_string(shape));
        dst = Tensor(shape);
        std::memcpy(dst.data(), b->bytes.data(), dst.bytes());
    };
    // Moments saved beside a tensor, or zeros (a model converted before any training).
    auto load_moments_of = [&](const std::string& name, const Shape& shape, Tensor& m, Tensor& v) {
        if (find_blob(name + ".adam_m")) {
            load_tensor(name + ".adam_m", shape, m);
            load_tensor(name + ".adam_v", shape, v);
        } else {
            m = Tensor(shape);
            v = Tensor(shape);
        }
    };
    if (!c.tied) {
        load_tensor("classifier", {c.vocab, c.dim}, ck.weights.classifier);
        if (load_moments && ck.adam)
            load_moments_of("classifier", {c.vocab, c.dim}, ck.adam->m.classifier, ck.adam->v.classifier);
    }
    for (int l = 0; l < c.layers; ++l)
        for (const auto& name : layer_extra_tensor_names(c)) {
            const std::string full = "layers." + std::to_string(l) + "." + name;
            const Shape shape = layer_tensor_shape(c, name);
            load_tensor(full, shape, ck.weights.layers[std::size_t(l)].get(name));
            if (load_moments && ck.adam)
                load_moments_of(full, shape, ck.adam->m.layers[std::size_t(l)].get(name),
                                ck.adam->v.layers[std::size_t(l)].get(name));
        }
    if (t.json.contains("lora")) read_lora(ck, t, path);
    for (auto [name, dst] : tokenizer_files(ck)) {
        if (const TrailerBlob* tok = find_blob(name)) {
            require(tok->dtype == "u8", path, ": trailer '", name, "' must be u8 bytes");
            dst->assign(tok->bytes.begin(), tok->bytes.end());
        }
    }
    if (!ck.tokenizer_gguf.empty()) {
        const GgufFile vocab(ck.tokenizer_gguf, path + " (embedded vocabulary)");
        const GgufValue* tokens = vocab.find("tokenizer.ggml.tokens");
        require(tokens && tokens->type == GgufValueType::ARRAY && tokens->array.size() == std::size_t(c.vocab), path,
                ": the embedded vocabulary has ", tokens ? tokens->array.size() : 0, " tokens but the model has ",
                c.vocab, " embedding rows; it does not belong to this model");
    }
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::uint8_t>*>> tokenizer_files(Checkpoint& ck) {
    return {{"tokenizer.model", &ck.tokenizer_model},
            {"tokenizer.gguf", &ck.tokenizer_gguf},
            {"tokenizer.json", &ck.tokenizer_json},
            {"tokenizer_config.json", &ck.tokenizer_config_json}};
}

std::vector<std::pair<std::string, const std::vector<std::uint8_t>*>> tokenizer_files(const Checkpoint& ck) {
    std::vector<std::pair<std::string, const std::vector<std::uint8_t>*>> out;
    for (auto [name, blob] : tokenizer_files(const_cast<Checkpoint&>(ck))) out.emplace_back(name, blob);
    return out;
}

Checkpoint read_blzt(const std::string& path, const BlztReadOptions& options) {
    MappedFile file(path);
    ByteReader r(file.bytes(), path);
    BlztHeader h = read_header(r, path);
    Checkpoint ck;
    ck.source_version = h.version;
    ck.weights.config = config_from_header(h, path);
    ck.state = state_from_header(h);
    const ModelConfig c = ck.weights.config;
    const std::uint64_t body = blzt_body_bytes(c);
    require(file.size() >= body, path, ": truncated: a v", h.version, " BLZT with these dimensions has ", body,
            " bytes, the file has ", file.size());

    ModelConfig tied = c;
    tied.tied = true;  // the body never holds a classifier
    ck.weights = Weights::zeros(tied);
    if (options.load_moments) ck.adam = AdamMoments::zeros(tied);
    const auto& names = layer_tensor_names();
    for (int l = 0; l < c.layers; ++l) {
        const std::size_t li = std::size_t(l);
        for (const auto& name : names) copy_floats(r, ck.weights.layers[li].get(name), "layer weights", file);
        if (options.load_moments) {
            for (const auto& name : names) {
                copy_floats(r, ck.adam->m.layers[li].get(name), "Adam m", file);
                copy_floats(r, ck.adam->v.layers[li].get(name), "Adam v", file);
            }
        } else {
            r.skip(2 * std::size_t(c.layer_params()) * sizeof(float));
        }
    }
    auto global = [&](Tensor& w, Tensor* m, Tensor* v) {
        copy_floats(r, w, "global weights", file);
        if (m) {
            copy_floats(r, *m, "Adam m", file);
            copy_floats(r, *v, "Adam v", file);
        } else {
            r.skip(2 * w.bytes());
        }
    };
    global(ck.weights.rms_final, options.load_moments ? &ck.adam->m.rms_final : nullptr,
           options.load_moments ? &ck.adam->v.rms_final : nullptr);
    global(ck.weights.embed, options.load_moments ? &ck.adam->m.embed : nullptr,
           options.load_moments ? &ck.adam->v.embed : nullptr);
    ck.weights.config = c;
    if (r.remaining() > 0) {
        Trailer t = parse_trailer(file.bytes().subspan(r.pos()), path);
        apply_trailer(ck, t, path, options.load_moments);
    }
    if (ck.adam) {
        ck.adam->m.config = ck.weights.config;
        ck.adam->v.config = ck.weights.config;
    }
    return ck;
}

namespace {

void write_tensor(AtomicWriter& w, const Tensor& t) { w.write(t.data(), t.bytes()); }

void write_moment_or_zeros(AtomicWriter& w, const Tensor* t, std::size_t bytes) {
    if (t && !t->empty())
        write_tensor(w, *t);
    else
        w.write_zeros(bytes);
}

}  // namespace

void write_blzt(const Checkpoint& ck, const std::string& path) {
    const Weights& W = ck.weights;
    const ModelConfig& c = W.config;
    c.validate(path);
    require(int(W.layers.size()) == c.layers, path, ": weights have ", W.layers.size(), " layers, config says ",
            c.layers);
    require(c.tied == W.classifier.empty(), path, ": classifier presence disagrees with config.tied");
    if (ck.adam) {
        require(ck.adam->m.config.same_shape(c) && ck.adam->v.config.same_shape(c), path,
                ": Adam moments do not have the model's shapes");
    }

    BlztHeader h{};
    h.magic = kBlztMagic;
    h.version = 4;
    h.step = ck.state.step;
    h.total_steps = ck.state.total_steps;
    h.n_layers = c.layers;
    h.vocab_size = c.vocab;
    h.dim = c.dim;
    h.hidden_dim = c.hidden;
    h.n_heads = c.heads;
    h.seq_len = c.seq;
    h.lr = ck.state.lr;
    h.loss = ck.state.loss;
    h.cum_compile = ck.state.cum_compile_ms;
    h.cum_train = ck.state.cum_train_ms;
    h.cum_wall = ck.state.cum_wall_ms;
    h.cum_steps = ck.state.cum_steps;
    h.cum_batches = ck.state.cum_batches;
    h.adam_t = ck.state.adam_t;
    h.kv_heads = c.kv_heads;
    h.head_dim = c.head_dim;
    h.q_dim = c.q_dim();

    // Collect every tensor first so that a shape error is found before anything is written.
    std::vector<std::pair<std::string, const Tensor*>> tensors;
    W.for_each([&](const std::string& name, const Tensor& t) { tensors.emplace_back(name, &t); });
    for (const auto& [name, t] : tensors) {
        Shape want = name == "rms_final" ? Shape{c.dim}
                     : (name == "embed" || name == "classifier")
                         ? Shape{c.vocab, c.dim}
                         : layer_tensor_shape(c, name.substr(name.rfind('.') + 1));
        require(t->shape() == want, path, ": tensor ", name, " is ", shape_string(t->shape()), ", expected ",
                shape_string(want));
    }
    auto moment = [&](const Weights* mw, const std::string& name) -> const Tensor* {
        return mw ? const_cast<Weights*>(mw)->find(name) : nullptr;
    };
    const Weights* m = ck.adam ? &ck.adam->m : nullptr;
    const Weights* v = ck.adam ? &ck.adam->v : nullptr;

    AtomicWriter w(path);
    w.put(h);
    const std::size_t per_layer = layer_tensor_names().size();
    for (int l = 0; l < c.layers; ++l) {
        for (std::size_t i = 0; i < per_layer; ++i) write_tensor(w, *tensors[l * per_layer + i].second);
        for (std::size_t i = 0; i < per_layer; ++i) {
            const auto& [name, t] = tensors[l * per_layer + i];
            write_moment_or_zeros(w, moment(m, name), t->bytes());
            write_moment_or_zeros(w, moment(v, name), t->bytes());
        }
    }
    for (const char* name : {"rms_final", "embed"}) {
        const Tensor* t = const_cast<Weights&>(W).find(name);
        write_tensor(w, *t);
        write_moment_or_zeros(w, moment(m, name), t->bytes());
        write_moment_or_zeros(w, moment(v, name), t->bytes());
    }
    require(w.written() == blzt_body_bytes(c), path, ": internal error: body size mismatch");

    Trailer trailer;
    trailer.json["config"] = c;
    trailer.json["metadata"] = ck.metadata;
    auto as_bytes = [](const Tensor& t) {
        return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(t.data()), t.bytes());
    };
    // The tensors beyond the body (an untied classifier, the family extras) with their moments.
    auto add_blob_tensor = [&](const std::string& name, const Tensor& t) {
        trailer.blobs.push_back({name, "f32", t.shape(), as_bytes(t)});
        const Tensor* tm = moment(m, name);
        const Tensor* tv = moment(v, name);
        if (tm && !tm->empty() && tv && !tv->empty()) {
            trailer.blobs.push_back({name + ".adam_m", "f32", t.shape(), as_bytes(*tm)});
            trailer.blobs.push_back({name + ".adam_v", "f32", t.shape(), as_bytes(*tv)});
        }
    };
    if (!c.tied) add_blob_tensor("classifier", W.classifier);
    for (int l = 0; l < c.layers; ++l)  // as apply_trailer reads them
        for (const auto& name : layer_extra_tensor_names(c))
            add_blob_tensor("layers." + std::to_string(l) + "." + name, W.layers[std::size_t(l)].get(name));
    if (ck.lora) {
        trailer.json["lora"] = {{"rank", ck.lora->rank}, {"targets", lora_targets_string(ck.lora->targets)}};
        ck.lora->for_each([&](const std::string& name, const Tensor& t) {
            trailer.blobs.push_back({"lora." + name, "f32", t.shape(), as_bytes(t)});
        });
        for (const auto& [name, t] : ck.lora_adam)
            trailer.blobs.push_back({"lora_adam." + name, "f32", t.shape(), as_bytes(t)});
    }
    for (auto [name, blob] : tokenizer_files(ck))
        if (!blob->empty())
            trailer.blobs.push_back({name, "u8", {std::int64_t(blob->size())}, {blob->data(), blob->size()}});
    const auto head = encode_trailer_head(trailer);
    w.write(head.data(), head.size());
    for (const auto& b : trailer.blobs) w.write(b.bytes.data(), b.bytes.size());
    w.commit();
}

}  // namespace ane
