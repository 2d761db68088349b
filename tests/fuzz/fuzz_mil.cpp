// MIL program text (the ANE kernels' source), parsed and, when small, run on zeros.
#include <vector>

#include "ane/mil/interpreter.hpp"
#include "ane/mil/weight_blob.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const float w[4] = {1, 2, 3, 4};
    const ane::mil::BlobMap blobs = {{"@model_path/weights/w.bin", ane::mil::make_fp16_blob(w, 4)}};
    ane::fuzz::expect_clean([&] {
        ane::mil::Program p = ane::mil::parse_program(text, blobs);
        std::int64_t elements = 0;
        for (const auto& st : p.statements) elements += st.type.numel();
        if (elements + p.input_type.numel() > (1 << 20)) return;  // parsed: running it would only take memory
        ane::mil::Interpreter run(std::move(p));
        std::vector<std::uint16_t> in(std::size_t(run.input_type().numel())), out(std::size_t(run.output_type().numel()));
        run.run(in.data(), out.data());
    });
    return 0;
}
