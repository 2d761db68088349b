#pragma once
// What type each op produces from its arguments, checking every argument on the way.
#include <vector>

#include "ane/mil/program.hpp"

namespace ane::mil {

// The result type of `st` (not a const) in `prog` so far; ParseError at the offending argument.
Type infer_type(const Program& prog, const Statement& st);

// numpy-style broadcast of two shapes (right-aligned); empty for scalars.
bool broadcast_shape(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                     std::vector<std::int64_t>& out);

}  // namespace ane::mil
