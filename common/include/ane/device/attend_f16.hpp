#pragma once
// One query's attention over an fp16 key/value cache (decoding): the keys and values are read
// as they are stored and widened in registers, never copied out as float32 (the copy cost
// more than the attention itself at long contexts, and its scratch grew with the context).
#include <cstdint>

#include "ane/device/matvec.hpp"

namespace ane {

// out[hd] = Σⱼ softmax(scale · q·kⱼ) vⱼ over j < span, kⱼ = k[j·hd .. j·hd + hd) (one KV head's
// rows one after another), vⱼ likewise. p [span] is scratch. `isa` must be one the CPU has;
// head sizes that are not a multiple of the vector width take the portable kernel.
void attend_one_f16(MatvecIsa isa, const float* q, const std::uint16_t* k, const std::uint16_t* v, int span, int hd,
                    float scale, float* p, float* out);

}  // namespace ane
