#pragma once
// The model as inference runs it (ane-generate, ane-eval): every matrix as a QuantMatrix,
// either a float32 view of the checkpoint's tensor or its own encoded blocks (a GGUF's Q8_0
// kept as stored, or a float32 model encoded at load by --weights). Norms and biases stay
// float32 in the checkpoint.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ane/checkpoint.hpp"
#include "ane/model/quant_matrix.hpp"

namespace ane {

struct InferenceLayer {
    QuantMatrix wq, wk, wv, wo, w1, w2, w3;
};

struct InferenceWeights {
    const Weights* base = nullptr;  // config, norms, biases (and the tensors F32 views show)
    std::vector<InferenceLayer> layers;
    QuantMatrix embed, classifier;  // classifier empty when tied
    // The matrix the logits come from: the classifier, or the embedding when tied.
    const QuantMatrix& output() const { return config().tied ? embed : classifier; }

    // Float32 views of every matrix of `w` (no copy; w must outlive them).
    static InferenceWeights view(const Weights& w);
    const ModelConfig& config() const { return base->config; }
    bool all_f32() const;
    std::uint64_t matrix_bytes() const;
    // "Q8_0 x 56, F16 x 7 (31.2 MB of matrices)".
    std::string summary() const;
    // Every matrix, by canonical name.
    void for_each(const std::function<void(const std::string&, const QuantMatrix&)>& fn) const;
};

// A model file loaded for inference. Not copyable: the weights may view the checkpoint.
struct InferenceModel {
    Checkpoint checkpoint;  // tokenizer, metadata; matrices kept encoded are empty here
    InferenceWeights weights;
    InferenceModel() = default;
    // The views stay valid (tensor buffers move with their tensors); base follows the move.
    InferenceModel(InferenceModel&& other) noexcept
        : checkpoint(std::move(other.checkpoint)), weights(std::move(other.weights)) {
        weights.base = &checkpoint.weights;
    }
    InferenceModel(const InferenceModel&) = delete;
    InferenceModel& operator=(const InferenceModel&) = delete;
};

// Loads any model file. Without `type`, matrices stay as the file stores them: a GGUF's F16,
// BF16 and quantized matrices are kept encoded, an int8 artifact's rows run as the Q8_0 they
// exactly are (rows of a multiple of 32 values), every other format is float32. With `type`,
// each matrix is encoded as that type; a matrix whose rows are not whole blocks of it (a
// Q8_0/Q4_0 row of a length not a multiple of 32) becomes F16 instead, as llama.cpp's
// quantizer falls back. The float32 tensors encoded are freed. Where the CPU has the kernels
// for them (rows8_integer: VNNI, or AVX2 for Q4_0), Q8_0 and Q4_0 matrices are laid out in
// groups of 8 rows (QuantMatrix::Layout).
InferenceModel load_inference_model(const std::string& path, std::optional<ggml::Type> type);

}  // namespace ane
