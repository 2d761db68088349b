#include "ane/formats/gguf.hpp"

#include <algorithm>

#include <cmath>
#include <cstring>
#include <deque>
#include <set>

#include "ane/error.hpp"
#include "ane/half.hpp"

namespace ane {

namespace {

constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF"
constexpr std::uint64_t kDefaultAlignment = 32;
constexpr std::uint64_t kMaxCount = 1ull << 32;

}  // namespace

GgufValue GgufValue::of_u32(std::uint32_t v) {
    GgufValue x;
    x.type = GgufValueType::U32;
    x.u = v;
    return x;
}
GgufValue GgufValue::of_i32(std::int32_t v) {
    GgufValue x;
    x.type = GgufValueType::I32;
    x.i = v;
    return x;
}
GgufValue GgufValue::of_f32(float v) {
    GgufValue x;
    x.type = GgufValueType::F32;
    x.f = v;
    return x;
}
GgufValue GgufValue::of_bool(bool v) {
    GgufValue x;
    x.type = GgufValueType::BOOL;
    x.u = v;
    return x;
}
GgufValue GgufValue::of_string(std::string v) {
    GgufValue x;
    x.type = GgufValueType::STRING;
    x.s = std::move(v);
    return x;
}
GgufValue GgufValue::of_array(GgufValueType elem, std::vector<GgufValue> items) {
    GgufValue x;
    x.type = GgufValueType::ARRAY;
    x.elem_type = elem;
    x.array = std::move(items);
    return x;
}

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::U16: case GgufValueType::I16:
        case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::U64: case GgufValueType::I64:
            return true;
        default: return false;
    }
}

double GgufValue::as_double() const {
    switch (type) {
        case GgufValueType::I8: case GgufValueType::I16: case GgufValueType::I32: case GgufValueType::I64:
            return double(i);
        case GgufValueType::F32: case GgufValueType::F64: return f;
        default: return double(u);
    }
}

std::string GgufValue::summary() const {
    switch (type) {
        case GgufValueType::STRING: return "'" + (s.size() > 60 ? s.substr(0, 60) + "..." : s) + "'";
        case GgufValueType::BOOL: return u ? "true" : "false";
        case GgufValueType::F32: case GgufValueType::F64: {
            char buf[32];
            std::snprintf(buf, sizeof(buf), "%g", f);
            return buf;
        }
        case GgufValueType::ARRAY: {
            std::string out = "[" + std::to_string(array.size()) + " items";
            for (std::size_t k = 0; k < array.size() && k < 3; ++k) out += (k ? ", " : ": ") + array[k].summary();
            return out + (array.size() > 3 ? ", ...]" : "]");
        }
        default: return is_integer() && (type == GgufValueType::I8 || type == GgufValueType::I16 ||
                                         type == GgufValueType::I32 || type == GgufValueType::I64)
                            ? std::to_string(i)
                            : std::to_string(u);
    }
}

std::uint64_t GgufTensorInfo::numel() const {
    std::uint64_t n = 1;
    for (auto d : ne) n *= d;
    return n;
}

Shape GgufTensorInfo::shape() const {
    Shape s;
    for (auto it = ne.rbegin(); it != ne.rend(); ++it) s.push_back(std::int64_t(*it));
    return s;
}

bool looks_like_gguf(const std::uint8_t* data, std::size_t size) {
    std::uint32_t magic = 0;
    if (size < 4) return false;
    std::memcpy(&magic, data, 4);
    return magic == kGgufMagic;
}

namespace {

std::string read_string(ByteReader& r, const std::string& path, const char* what) {
    const auto len = r.get<std::uint64_t>(what);
    require(len <= r.remaining(), path, ": ", what, " length ", len, " runs past the end of the file");
    const auto* p = reinterpret_cast<const char*>(r.take(len, what));
    return std::string(p, len);
}

GgufValue read_value(ByteReader& r, GgufValueType type, const std::string& path, const std::string& key, int depth) {
    GgufValue v;
    v.type = type;
    const char* what = "metadata value";
    switch (type) {
        case GgufValueType::U8: v.u = r.get<std::uint8_t>(what); break;
        case GgufValueType::I8: v.i = r.get<std::int8_t>(what); break;
        case GgufValueType::U16: v.u = r.get<std::uint16_t>(what); break;
        case GgufValueType::I16: v.i = r.get<std::int16_t>(what); break;
        case GgufValueType::U32: v.u = r.get<std::uint32_t>(what); break;
        case GgufValueType::I32: v.i = r.get<std::int32_t>(what); break;
        case GgufValueType::U64: v.u = r.get<std::uint64_t>(what); break;
        case GgufValueType::I64: v.i = r.get<std::int64_t>(what); break;
        case GgufValueType::F32: v.f = r.get<float>(what); break;
        case GgufValueType::F64: v.f = r.get<double>(what); break;
        case GgufValueType::BOOL: {
            const auto b = r.get<std::uint8_t>(what);
            require(b <= 1, path, ": metadata '", key, "': bool value ", int(b), " is neither 0 nor 1");
            v.u = b;
            break;
        }
        case GgufValueType::STRING: v.s = read_string(r, path, "metadata string"); break;
        case GgufValueType::ARRAY: {
            require(depth < 4, path, ": metadata '", key, "': arrays nested too deeply");
            const auto elem = r.get<std::uint32_t>("array element type");
            require(elem <= 12, path, ": metadata '", key, "': unknown array element type ", elem);
            const auto count = r.get<std::uint64_t>("array length");
            // Every element takes at least its fixed size (a string its 8-byte length): a count
            // beyond the file is corrupt, and is refused before anything is allocated for it.
            static constexpr std::uint8_t kMinBytes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
            require(count <= r.remaining() / kMinBytes[elem], path, ": metadata '", key, "': array of ", count,
                    " elements runs past the end of the file");
            v.elem_type = GgufValueType(elem);
            v.array.reserve(count);
            for (std::uint64_t k = 0; k < count; ++k) v.array.push_back(read_value(r, v.elem_type, path, key, depth + 1));
            break;
        }
        default: throw error(path, ": metadata '", key, "' has unknown value type ", std::uint32_t(type));
    }
    return v;
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : file_(path), bytes_(file_.bytes()), origin_(path) { parse(); }

GgufFile::GgufFile(std::vector<std::uint8_t> bytes, std::string origin)
    : owned_(std::move(bytes)), bytes_(owned_), origin_(std::move(origin)) {
    parse();
}

void GgufFile::parse() {
    const std::string& path = origin_;
    ByteReader r(bytes_, path);
    require(looks_like_gguf(bytes_.data(), bytes_.size()), path, ": not a GGUF file (bad magic)");
    r.skip(4);
    version_ = r.get<std::uint32_t>("GGUF version");
    require(version_ == 2 || version_ == 3, path, ": GGUF version ", version_, " is not supported (2 and 3 are)");
    const auto n_tensors = r.get<std::uint64_t>("tensor count");
    const auto n_kv = r.get<std::uint64_t>("metadata count");
    require(n_tensors < kMaxCount && n_kv < kMaxCount && n_kv <= r.remaining() && n_tensors <= r.remaining(), path,
            ": implausible counts (", n_tensors, " tensors, ", n_kv, " metadata entries)");
    for (std::uint64_t k = 0; k < n_kv; ++k) {
        std::string key = read_string(r, path, "metadata key");
        const auto type = r.get<std::uint32_t>("metadata value type");
        require(type <= 12, path, ": metadata '", key, "' has unknown value type ", type);
        kv_.emplace_back(key, read_value(r, GgufValueType(type), path, key, 0));
    }
    std::uint64_t alignment = kDefaultAlignment;
    if (const GgufValue* a = find("general.alignment")) {
        require(a->is_integer() && a->u > 0 && a->u <= 65536 && (a->u & (a->u - 1)) == 0, path,
                ": general.alignment must be a power of two");
        alignment = a->u;
    }
    std::set<std::string> names;
    for (std::uint64_t t = 0; t < n_tensors; ++t) {
        GgufTensorInfo info;
        info.name = read_string(r, path, "tensor name");
        require(names.insert(info.name).second, path, ": tensor '", info.name, "' appears twice");
        const auto n_dims = r.get<std::uint32_t>("tensor dimension count");
        require(n_dims >= 1 && n_dims <= 4, path, ": tensor '", info.name, "' has ", n_dims, " dimensions");
        std::uint64_t numel = 1;
        for (std::uint32_t d = 0; d < n_dims; ++d) {
            const auto n = r.get<std::uint64_t>("tensor dimension");
            require(n >= 1 && n < (1ull << 40), path, ": tensor '", info.name, "' has dimension ", n);
            numel *= n;
            require(numel < (1ull << 40), path, ": tensor '", info.name, "' is implausibly large");
            info.ne.push_back(n);
        }
        info.type = r.get<std::uint32_t>("tensor type");
        info.offset = r.get<std::uint64_t>("tensor offset");
        std::size_t be = 0, bb = 0;
        if (ggml::type_layout(info.type, be, bb)) {
            require(info.ne[0] % be == 0, path, ": tensor '", info.name, "' rows of ", info.ne[0],
                    " are not whole ", ggml::type_name(info.type), " blocks");
            info.bytes = numel / be * bb;
        }
        require(info.offset % alignment == 0, path, ": tensor '", info.name, "' offset ", info.offset,
                " is not aligned to ", alignment);
        tensors_.push_back(std::move(info));
    }
    const std::uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
    require(data_start <= bytes_.size() || tensors_.empty(), path, ": truncated before the tensor data");
    data_ = bytes_.data() + std::min<std::uint64_t>(data_start, bytes_.size());
    const std::uint64_t data_size = bytes_.size() - std::min<std::uint64_t>(data_start, bytes_.size());
    for (const auto& t : tensors_)
        require(t.offset <= data_size && t.bytes <= data_size - t.offset, path, ": tensor '", t.name, "' (",
                t.bytes, " bytes at data offset ", t.offset, ") lies past the end of the file");
}

const GgufValue* GgufFile::find(const std::string& key) const {
    for (const auto& [k, v] : kv_)
        if (k == key) return &v;
    return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

Tensor GgufFile::read_tensor(const GgufTensorInfo& info) const {
    std::size_t be = 0, bb = 0;
    require(ggml::type_layout(info.type, be, bb), path(), ": tensor '", info.name, "' has type ",
            ggml::type_name(info.type), ", which the suite cannot decode (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)");
    Tensor t(info.shape());
    ggml::dequantize(ggml::Type(info.type), tensor_data(info), t.data(), std::size_t(info.numel()));
    file_.release(tensor_data(info), info.bytes);
    return t;
}

std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const GgufFile& file) {
    std::vector<std::pair<std::string, GgufValue>> out;
    for (const auto& kv : file.metadata())
        if (kv.first.rfind("tokenizer.", 0) == 0) out.push_back(kv);
    return out;
}

namespace {

std::uint32_t meta_u32(const GgufFile& f, const std::string& key, std::optional<std::uint32_t> fallback) {
    const GgufValue* v = f.find(key);
    if (!v) {
        require(fallback.has_value(), f.path(), ": missing metadata '", key, "'");
        return *fallback;
    }
    require(v->is_integer() && v->as_double() >= 0 && v->as_double() < 4294967296.0, f.path(), ": metadata '", key,
            "' is not a non-negative integer");
    return std::uint32_t(v->as_double());
}

double meta_float(const GgufFile& f, const std::string& key, double fallback) {
    const GgufValue* v = f.find(key);
    if (!v) return fallback;
    require(v->is_number(), f.path(), ": metadata '", key, "' is not a number");
    return v->as_double();
}

}  // namespace

namespace {
// GGUF's per-layer tensor names beside ours (LayerWeights::get).
const std::vector<std::pair<std::string, std::string>>& gguf_layer_tensor_names() {
    static const std::vector<std::pair<std::string, std::string>> names = {
        {"attn_q.weight", "wq"},         {"attn_k.weight", "wk"},         {"attn_v.weight", "wv"},
        {"attn_output.weight", "wo"},    {"ffn_gate.weight", "w1"},       {"ffn_down.weight", "w2"},
        {"ffn_up.weight", "w3"},         {"attn_norm.weight", "rms_att"}, {"ffn_norm.weight", "rms_ffn"},
        {"attn_q.bias", "bq"},           {"attn_k.bias", "bk"},           {"attn_v.bias", "bv"},
        {"attn_q_norm.weight", "q_norm"}, {"attn_k_norm.weight", "k_norm"}};
    return names;
}
}  // namespace

Checkpoint read_gguf_model(const std::string& path, std::map<std::string, QuantMatrix>* kept) {
    const GgufFile f(path);
    require(!f.tensors().empty(), path, ": holds no tensors (a vocabulary-only GGUF?)");
    const GgufValue* arch_v = f.find("general.architecture");
    require(arch_v && arch_v->type == GgufValueType::STRING, path, ": no general.architecture");
    const std::string arch = arch_v->s;
    require(arch == "llama" || arch == "qwen2" || arch == "qwen3", path, ": architecture '", arch,
            "' is not supported (llama, qwen2 and qwen3 are)");
    // qwen2/qwen3 rotate with NEOX RoPE: their Q/K rows keep Hugging Face's split halves.
    const bool neox = arch != "llama";
    const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
    require(embd && embd->ne.size() == 2, path, ": no 2-D token_embd.weight");

    ModelConfig c;
    c.name = "gguf";
    if (const GgufValue* n = f.find("general.name"); n && n->type == GgufValueType::STRING) c.name = n->s;
    c.dim = int(meta_u32(f, arch + ".embedding_length", std::nullopt));
    c.hidden = int(meta_u32(f, arch + ".feed_forward_length", std::nullopt));
    c.layers = int(meta_u32(f, arch + ".block_count", std::nullopt));
    c.heads = int(meta_u32(f, arch + ".attention.head_count", std::nullopt));
    c.kv_heads = int(meta_u32(f, arch + ".attention.head_count_kv", std::uint32_t(c.heads)));
    require(c.heads > 0, path, ": head_count is 0");
    c.head_dim = int(meta_u32(f, arch + ".attention.key_length", std::uint32_t(c.dim / c.heads)));
    const std::uint32_t rope_dims = meta_u32(f, arch + ".rope.dimension_count", std::uint32_t(c.head_dim));
    require(int(rope_dims) == c.head_dim, path, ": partial rotary embeddings (", rope_dims, " of ", c.head_dim,
            " dimensions) are not supported");
    c.seq = int(meta_u32(f, arch + ".context_length", 2048));
    require(embd->ne[1] <= (1u << 22) && embd->ne[0] <= (1u << 16), path, ": token_embd.weight of ", embd->ne[1],
            " x ", embd->ne[0], " is beyond the supported sizes");
    c.vocab = int(embd->ne[1]);
    c.rope_theta = meta_float(f, arch + ".rope.freq_base", 10000.0);
    c.norm_eps = meta_float(f, arch + ".attention.layer_norm_rms_epsilon", 1e-5);
    c.residual_scale = 1.0;
    if (const GgufValue* sc = f.find(arch + ".rope.scaling.type"); sc && sc->s != "none")
        throw error(path, ": rope scaling '", sc->s, "' is not supported");
    c.attention_bias = arch == "qwen2";
    c.qk_norm = arch == "qwen3";
    if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
        // Llama 3's rope scaling as llama.cpp stores it: what each frequency is divided by.
        require(arch == "llama", path, ": rope_freqs with architecture ", arch, " is not supported");
        require(rf->ne.size() == 1 && c.heads > 0 && rf->ne[0] == std::uint64_t(c.head_dim / 2), path,
                ": rope_freqs.weight should hold head_dim / 2 = ", c.head_dim / 2, " values");
        const Tensor t = f.read_tensor(*rf);
        const std::vector<double> divisors(t.data(), t.data() + t.numel());
        const int original = int(meta_u32(f, arch + ".rope.scaling.original_context_length", 8192));
        c.rope_llama3 = llama3_rope_from_divisors(c, divisors, original, path);
    }

    const GgufTensorInfo* out = f.find_tensor("output.weight");
    // Matrices in an encoding other than F32 stay encoded when the caller keeps them.
    auto keep = [&](const GgufTensorInfo& info) {
        return kept != nullptr && info.ne.size() == 2 && info.type != std::uint32_t(ggml::Type::F32);
    };
    Tensor classifier;
    if (out && keep(*out)) {
        // llama.cpp's converters often write a copy of a tied embedding.
        c.tied = out->type == embd->type && out->bytes == embd->bytes && out->ne == embd->ne &&
                 std::memcmp(f.tensor_data(*out), f.tensor_data(*embd), out->bytes) == 0;
    } else if (out) {
        classifier = f.read_tensor(*out);
        const Tensor e = f.read_tensor(*embd);
        c.tied = classifier.bit_equal(e);
    } else {
        c.tied = true;
    }
    c.validate(path);
    // Quantized tensors take at least half a byte per weight: dimensions that need more than
    // the file holds are refused before the model is allocated.
    require_plausible_size(c, f.size(), 0.5, path);
    if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens"); tokens && tokens->type == GgufValueType::ARRAY)
        require(tokens->array.size() == std::size_t(c.vocab), path, ": tokenizer.ggml.tokens has ",
                tokens->array.size(), " tokens but token_embd.weight has ", c.vocab,
                " rows; the vocabulary does not match the model");

    Checkpoint ck;
    ck.weights.config = c;
    ck.weights.layers.resize(std::size_t(c.layers));
    std::set<std::string> used;
    auto load = [&](const std::string& gguf_name, const std::string& ours, const Shape& shape, Tensor& dst) {
        const GgufTensorInfo* info = f.find_tensor(gguf_name);
        require(info != nullptr, path, ": missing tensor '", gguf_name, "'");
        require(info->shape() == shape, path, ": tensor '", gguf_name, "' is ", shape_string(info->shape()),
                ", the config needs ", shape_string(shape));
        used.insert(gguf_name);
        if (keep(*info)) {
            std::size_t be = 0, bb = 0;
            require(ggml::type_layout(info->type, be, bb), path, ": tensor '", info->name, "' has type ",
                    ggml::type_name(info->type), ", which the suite cannot decode");
            (*kept)[ours] = QuantMatrix::from_blocks(ggml::Type(info->type), int(shape[0]), int(shape[1]),
                                                     f.tensor_data(*info));
            return;
        }
        dst = f.read_tensor(*info);
    };
    const auto extras = layer_extra_tensor_names(c);
    for (int l = 0; l < c.layers; ++l) {
        LayerWeights& L = ck.weights.layers[std::size_t(l)];
        const std::string prefix = "layers." + std::to_string(l) + ".";
        for (const auto& [g, ours] : gguf_layer_tensor_names()) {
            const auto& base = layer_tensor_names();
            if (std::find(base.begin(), base.end(), ours) == base.end() &&
                std::find(extras.begin(), extras.end(), ours) == extras.end())
                continue;
            load("blk." + std::to_string(l) + "." + g, prefix + ours, layer_tensor_shape(c, ours), L.get(ours));
        }
        if (neox) {
            layer_rows_halves_to_interleaved(L, c);
            for (const char* name : {"wq", "wk"})
                if (kept && kept->count(prefix + name))
                    (*kept)[prefix + name].rope_rows_halves_to_interleaved(rope_row_heads(c, name), c.head_dim);
        }
    }
    load("token_embd.weight", "embed", {c.vocab, c.dim}, ck.weights.embed);
    load("output_norm.weight", "rms_final", {c.dim}, ck.weights.rms_final);
    if (out) {
        used.insert("output.weight");
        if (!c.tied && keep(*out)) load("output.weight", "classifier", {c.vocab, c.dim}, ck.weights.classifier);
        else if (!c.tied) ck.weights.classifier = std::move(classifier);
    }
    if (f.find_tensor("rope_freqs.weight")) used.insert("rope_freqs.weight");
    for (const auto& t : f.tensors())
        require(used.count(t.name), path, ": tensor '", t.name, "' is not part of the supported ", arch, " model");
    const auto tok = gguf_tokenizer_metadata(f);
    if (!tok.empty()) ck.tokenizer_gguf = encode_vocab_only_gguf(tok);
    ck.metadata["source"] = {{"format", "gguf"}, {"path", path}};
    ck.state.total_steps = 0;
    return ck;
}

// ---- writing ----

namespace {

class Buffer {
public:
    std::vector<std::uint8_t> bytes;
    template <typename T>
    void put(T v) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    void put_string(const std::string& s) {
        put<std::uint64_t>(s.size());
        bytes.insert(bytes.end(), s.begin(), s.end());
    }
    void put_value(const GgufValue& v) {
        switch (v.type) {
            case GgufValueType::U8: put<std::uint8_t>(std::uint8_t(v.u)); break;
            case GgufValueType::I8: put<std::int8_t>(std::int8_t(v.i)); break;
            case GgufValueType::U16: put<std::uint16_t>(std::uint16_t(v.u)); break;
            case GgufValueType::I16: put<std::int16_t>(std::int16_t(v.i)); break;
            case GgufValueType::U32: put<std::uint32_t>(std::uint32_t(v.u)); break;
            case GgufValueType::I32: put<std::int32_t>(std::int32_t(v.i)); break;
            case GgufValueType::U64: put<std::uint64_t>(v.u); break;
            case GgufValueType::I64: put<std::int64_t>(v.i); break;
            case GgufValueType::F32: put<float>(float(v.f)); break;
            case GgufValueType::F64: put<double>(v.f); break;
            case GgufValueType::BOOL: put<std::uint8_t>(v.u ? 1 : 0); break;
            case GgufValueType::STRING: put_string(v.s); break;
            case GgufValueType::ARRAY:
                put<std::uint32_t>(std::uint32_t(v.elem_type));
                put<std::uint64_t>(v.array.size());
                for (const auto& e : v.array) put_value(e);
                break;
        }
    }
    void put_kv(const std::string& key, const GgufValue& v) {
        put_string(key);
        put<std::uint32_t>(std::uint32_t(v.type));
        put_value(v);
    }
    void pad_to(std::size_t alignment) {
        while (bytes.size() % alignment) bytes.push_back(0);
    }
};

// One tensor of an export: encoded and written one at a time, so that export never holds a
// second full copy of the model.
struct PlannedTensor {
    std::string name;
    const Tensor* src;
    ggml::Type type;
    float scale;  // the residual scale folded into Wo and W2, else 1
    std::uint64_t bytes;
};

std::uint64_t encoded_bytes(ggml::Type type, std::uint64_t n) {
    std::size_t be = 1, bb = 4;
    ggml::type_layout(std::uint32_t(type), be, bb);
    return n / be * bb;
}

void encode_into(const PlannedTensor& t, std::vector<std::uint8_t>& out, std::vector<float>& scratch) {
    const std::size_t n = std::size_t(t.src->numel());
    const float* src = t.src->data();
    if (t.scale != 1.0f) {
        scratch.assign(src, src + n);
        for (auto& x : scratch) x *= t.scale;
        src = scratch.data();
    }
    out.resize(std::size_t(t.bytes));
    switch (t.type) {
        case ggml::Type::F32: std::memcpy(out.data(), src, n * 4); break;
        case ggml::Type::F16:
            float_to_fp16(src, reinterpret_cast<std::uint16_t*>(out.data()), n);
            break;
        case ggml::Type::Q8_0:
        case ggml::Type::Q4_0: ggml::quantize(t.type, src, out.data(), n); break;
        default: throw error("internal: unexpected export type");
    }
}

}  // namespace

std::vector<std::uint8_t> encode_vocab_only_gguf(const std::vector<std::pair<std::string, GgufValue>>& kv) {
    Buffer b;
    b.put<std::uint32_t>(kGgufMagic);
    b.put<std::uint32_t>(3);
    b.put<std::uint64_t>(0);
    b.put<std::uint64_t>(kv.size());
    for (const auto& [k, v] : kv) b.put_kv(k, v);
    b.pad_to(kDefaultAlignment);
    return std::move(b.bytes);
}

GgufExportType parse_gguf_export_type(const std::string& name) {
    if (name == "f32") return GgufExportType::F32;
    if (name == "f16") return GgufExportType::F16;
    if (name == "q8_0") return GgufExportType::Q8_0;
    if (name == "q4_0") return GgufExportType::Q4_0;
    throw error("unknown GGUF type '", name, "' (expected f32, f16, q8_0 or q4_0)");
}

void write_gguf_model(const Checkpoint& ck, const std::vector<std::pair<std::string, GgufValue>>& tokenizer_kv,
                      GgufExportType type, const std::string& path) {
    const ModelConfig& c = ck.weights.config;
    c.validate(path);
    const std::string arch = model_family(c, path);
    require(arch == "llama" || c.rope_llama3.factor == 0, path, ": Llama 3 rope scaling with architecture ", arch,
            " has no GGUF form");
    for (const auto& [key, value] : tokenizer_kv)
        if (key == "tokenizer.ggml.tokens")
            require(value.array.size() == std::size_t(c.vocab), path, ": the tokenizer has ", value.array.size(),
                    " tokens but the model has ", c.vocab,
                    " embedding rows; llama.cpp needs one token per row (vocabulary mismatch)");
    std::vector<PlannedTensor> tensors;
    auto add = [&](const std::string& name, const Tensor& t, bool is_norm, float scale = 1.0f) {
        ggml::Type tt = ggml::Type::F32;
        if (!is_norm && type == GgufExportType::F16) tt = ggml::Type::F16;
        // Rows that are not whole 32-value blocks fall back to F16, as llama.cpp's quantizer does.
        if (!is_norm && type == GgufExportType::Q8_0) tt = t.cols() % 32 == 0 ? ggml::Type::Q8_0 : ggml::Type::F16;
        if (!is_norm && type == GgufExportType::Q4_0) tt = t.cols() % 32 == 0 ? ggml::Type::Q4_0 : ggml::Type::F16;
        tensors.push_back({name, &t, tt, scale, encoded_bytes(tt, std::uint64_t(t.numel()))});
    };
    // llama.cpp has no residual scale: fold α into the branch outputs (Wo, W2).
    const float alpha = float(c.residual_scale);
    add("token_embd.weight", ck.weights.embed, false);
    // Llama 3's rope scaling as llama.cpp's converter writes it: what each frequency is divided by.
    Tensor rope_freqs;
    if (const auto d = c.rope_divisors(); !d.empty()) {
        rope_freqs = Tensor({std::int64_t(d.size())});
        for (std::size_t i = 0; i < d.size(); ++i) rope_freqs.data()[i] = float(d[i]);
        add("rope_freqs.weight", rope_freqs, true);
    }
    add("output_norm.weight", ck.weights.rms_final, true);
    if (!c.tied) add("output.weight", ck.weights.classifier, false);
    // NEOX architectures take Q/K rows (and their biases and norm gains) in split halves: those
    // tensors are written from permuted copies.
    std::deque<Tensor> halves;  // stable addresses: `tensors` points into it
    for (int l = 0; l < c.layers; ++l) {
        const LayerWeights& L = ck.weights.layers[std::size_t(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        for (const auto& [g, ours] : gguf_layer_tensor_names()) {
            const Tensor& t = L.get(ours);
            if (t.empty()) continue;
            const float scale = ours == "wo" || ours == "w2" ? alpha : 1.0f;
            const int heads = rope_row_heads(c, ours);
            if (arch == "llama" || heads == 0) {
                add(p + g, t, t.shape().size() == 1, scale);
                continue;
            }
            halves.push_back(t);
            rope_rows_interleaved_to_halves(halves.back(), heads, c.head_dim);
            add(p + g, halves.back(), t.shape().size() == 1, scale);
        }
    }

    const auto key = [&](const char* k) { return arch + "." + k; };
    // llama.cpp's LLAMA_FTYPE: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7.
    const std::uint32_t file_type = type == GgufExportType::F32   ? 0
                                    : type == GgufExportType::F16 ? 1
                                    : type == GgufExportType::Q4_0 ? 2
                                                                   : 7;
    std::vector<std::pair<std::string, GgufValue>> kv = {
        {"general.architecture", GgufValue::of_string(arch)},
        {"general.name", GgufValue::of_string(c.name.empty() ? "anetrain" : c.name)},
        {"general.alignment", GgufValue::of_u32(std::uint32_t(kDefaultAlignment))},
        {"general.file_type", GgufValue::of_u32(file_type)},
        {key("context_length"), GgufValue::of_u32(std::uint32_t(c.seq))},
        {key("embedding_length"), GgufValue::of_u32(std::uint32_t(c.dim))},
        {key("feed_forward_length"), GgufValue::of_u32(std::uint32_t(c.hidden))},
        {key("block_count"), GgufValue::of_u32(std::uint32_t(c.layers))},
        {key("attention.head_count"), GgufValue::of_u32(std::uint32_t(c.heads))},
        {key("attention.head_count_kv"), GgufValue::of_u32(std::uint32_t(c.kv_heads))},
        {key("attention.key_length"), GgufValue::of_u32(std::uint32_t(c.head_dim))},
        {key("attention.value_length"), GgufValue::of_u32(std::uint32_t(c.head_dim))},
        {key("rope.dimension_count"), GgufValue::of_u32(std::uint32_t(c.head_dim))},
        {key("rope.freq_base"), GgufValue::of_f32(float(c.rope_theta))},
        {key("attention.layer_norm_rms_epsilon"), GgufValue::of_f32(float(c.norm_eps))},
        {key("vocab_size"), GgufValue::of_u32(std::uint32_t(c.vocab))},
    };
    if (c.rope_llama3.factor != 0)
        kv.push_back({key("rope.scaling.original_context_length"),
                      GgufValue::of_u32(std::uint32_t(c.rope_llama3.original_context))});
    for (const auto& e : tokenizer_kv) kv.push_back(e);

    Buffer head;
    head.put<std::uint32_t>(kGgufMagic);
    head.put<std::uint32_t>(3);
    head.put<std::uint64_t>(tensors.size());
    head.put<std::uint64_t>(kv.size());
    for (const auto& [k, v] : kv) head.put_kv(k, v);
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
        head.put_string(t.name);
        const Shape& shape = t.src->shape();
        head.put<std::uint32_t>(std::uint32_t(shape.size()));
        for (auto it = shape.rbegin(); it != shape.rend(); ++it) head.put<std::uint64_t>(std::uint64_t(*it));
        head.put<std::uint32_t>(std::uint32_t(t.type));
        head.put<std::uint64_t>(offset);
        offset += (t.bytes + kDefaultAlignment - 1) / kDefaultAlignment * kDefaultAlignment;
    }
    head.pad_to(kDefaultAlignment);

    AtomicWriter w(path);
    w.write(head.bytes.data(), head.bytes.size());
    std::vector<std::uint8_t> encoded;
    std::vector<float> scratch;
    for (const auto& t : tensors) {
        encode_into(t, encoded, scratch);
        w.write(encoded.data(), encoded.size());
        w.write_zeros((kDefaultAlignment - encoded.size() % kDefaultAlignment) % kDefaultAlignment);
    }
    w.commit();
}

}  // namespace ane
