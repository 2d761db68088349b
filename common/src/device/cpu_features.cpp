#include "cpu_features.hpp"

#include <cstdlib>

namespace ane::cpu {

std::optional<Isa> parse_isa(const std::string& text) {
    if (text == "portable") return Isa::portable;
    if (text == "avx2") return Isa::avx2;
    if (text == "avx2_vnni") return Isa::avx2_vnni;
    if (text == "avx512") return Isa::avx512;
    return std::nullopt;
}

Isa max_isa() {
    static const Isa cap = [] {
        const char* text = std::getenv("ANE_MAX_CPU_ISA");
        return text ? parse_isa(text).value_or(Isa::avx512) : Isa::avx512;
    }();
    return cap;
}

}  // namespace ane::cpu
