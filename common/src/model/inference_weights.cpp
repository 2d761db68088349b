#include "ane/model/inference_weights.hpp"

#include <cstdio>

#include "ane/device/quant_matvec.hpp"
#include "ane/error.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/model_file.hpp"

namespace ane {

namespace {

// The seven matrices of a layer by short name, beside their float32 tensors.
template <typename Layer, typename F>
void each_layer_matrix(InferenceLayer& q, Layer& w, F&& fn) {
    fn("wq", q.wq, w.wq);
    fn("wk", q.wk, w.wk);
    fn("wv", q.wv, w.wv);
    fn("wo", q.wo, w.wo);
    fn("w1", q.w1, w.w1);
    fn("w2", q.w2, w.w2);
    fn("w3", q.w3, w.w3);
}

}  // namespace

InferenceWeights InferenceWeights::view(const Weights& w) {
    InferenceWeights out;
    out.base = &w;
    out.layers.resize(w.layers.size());
    for (std::size_t l = 0; l < w.layers.size(); ++l)
        each_layer_matrix(out.layers[l], w.layers[l],
                          [](const char*, QuantMatrix& q, const Tensor& t) { q = QuantMatrix::view(t); });
    out.embed = QuantMatrix::view(w.embed);
    if (!w.config.tied) out.classifier = QuantMatrix::view(w.classifier);
    return out;
}

void InferenceWeights::for_each(const std::function<void(const std::string&, const QuantMatrix&)>& fn) const {
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const InferenceLayer& q = layers[l];
        const std::string p = "layers." + std::to_string(l) + ".";
        for (const auto& [name, m] : {std::pair{"wq", &q.wq}, {"wk", &q.wk}, {"wv", &q.wv}, {"wo", &q.wo},
                                      {"w1", &q.w1}, {"w2", &q.w2}, {"w3", &q.w3}})
            fn(p + name, *m);
    }
    fn("embed", embed);
    if (!config().tied) fn("classifier", classifier);
}

bool InferenceWeights::all_f32() const {
    bool f32 = true;
    for_each([&](const std::string&, const QuantMatrix& m) { f32 = f32 && m.type() == ggml::Type::F32; });
    return f32;
}

std::uint64_t InferenceWeights::matrix_bytes() const {
    std::uint64_t bytes = 0;
    for_each([&](const std::string&, const QuantMatrix& m) { bytes += m.bytes(); });
    return bytes;
}

std::string InferenceWeights::summary() const {
    std::map<std::string, int> counts;
    for_each([&](const std::string&, const QuantMatrix& m) { ++counts[m.type_name()]; });
    std::string text;
    for (const auto& [type, n] : counts) text += (text.empty() ? "" : ", ") + type + " x " + std::to_string(n);
    char mb[64];
    std::snprintf(mb, sizeof mb, " (%.1f MB of matrices)", double(matrix_bytes()) / 1e6);
    return text + mb;
}

InferenceModel load_inference_model(const std::string& path, std::optional<ggml::Type> type) {
    InferenceModel model;
    std::map<std::string, QuantMatrix> kept;
    const FileKind kind = detect_file_kind(path);
    model.checkpoint = kind == FileKind::Gguf       ? read_gguf_model(path, &kept)
                       : kind == FileKind::Artifact ? read_artifact(path, &kept)
                                                    : load_model(path);
    Weights& w = model.checkpoint.weights;
    InferenceWeights& q = model.weights;
    q.base = &w;
    q.layers.resize(w.layers.size());
    // Each matrix: the kept blocks or a view of the tensor, then encoded as `type` if asked.
    auto place = [&](const std::string& name, QuantMatrix& m, Tensor& t) {
        if (auto it = kept.find(name); it != kept.end()) {
            m = std::move(it->second);
            kept.erase(it);
        } else {
            m = QuantMatrix::view(t);
        }
        if (!type || *type == m.type()) return;
        const ggml::Type to = QuantMatrix::can_encode(*type, m.cols()) ? *type : ggml::Type::F16;
        if (to == m.type()) return;
        if (to == ggml::Type::F32) {
            t = m.decode();
            m = QuantMatrix::view(t);
            return;
        }
        m = m.type() == ggml::Type::F32 ? QuantMatrix::encode(t, to) : m.converted(to);
        t = Tensor();
    };
    // Q8_0/Q4_0 in groups of 8 rows where the CPU has the integer kernels for that layout.
    const Int8Dot int8 = best_int8_dot();
    auto lay_out = [&](QuantMatrix& m) {
        if (rows8_integer(int8, m.type()) && QuantMatrix::can_interleave(m.type(), m.rows())) m.interleave_rows8();
    };
    for (std::size_t l = 0; l < w.layers.size(); ++l) {
        const std::string p = "layers." + std::to_string(l) + ".";
        each_layer_matrix(q.layers[l], w.layers[l],
                          [&](const char* name, QuantMatrix& m, Tensor& t) { place(p + name, m, t); });
    }
    place("embed", q.embed, w.embed);
    if (!w.config.tied) place("classifier", q.classifier, w.classifier);
    for (auto& L : q.layers)
        for (QuantMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w2, &L.w3}) lay_out(*m);
    lay_out(q.embed);
    if (!w.config.tied) lay_out(q.classifier);
    return model;
}

}  // namespace ane
