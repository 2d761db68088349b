#pragma once
// Emits one MIL function in the exact text form of spec/ane.md §3: the prologue, typed
// statements with labels, constants deduplicated by value, the return clause.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "ane/mil/program.hpp"

namespace ane::mil {

using Dims = std::vector<long long>;

class MilWriter {
public:
    // The input `x` is [1, channels, 1, spatial].
    MilWriter(int channels, int spatial);

    std::string ints(const std::vector<int>& values);  // tensor<int32, [n]> constant
    std::string int32(int value);
    std::string boolean(bool value);
    std::string fp16(float value, const char* format);  // printed with %f or %g, as the anchors do
    std::string text(const std::string& value);         // string constant
    std::string blob(const Dims& shape, const std::string& file, const std::vector<float>& values);

    // `var = op(args)` producing an fp16 tensor of `shape`; args as "name=var" pieces.
    std::string op(const std::string& hint, const Dims& shape, const std::string& op, const std::string& args);

    // Common compositions.
    std::string slice(const std::string& x, const Dims& begin, const Dims& size, const std::string& hint);
    std::string reshape(const std::string& x, const Dims& shape, const std::string& hint);
    std::string swap_last(const std::string& x, const Dims& in_shape, const std::string& hint);  // perm [0,1,3,2]
    std::string matmul(const std::string& x, const std::string& y, bool tx, bool ty, const Dims& out, const std::string& hint);
    std::string concat(const std::vector<std::string>& values, int axis, const Dims& out, const std::string& hint);

    // The program text returning `output`; the weight files used.
    std::string finish(const std::string& output);
    BlobMap take_blobs() { return std::move(blobs_); }

private:
    std::string fresh(const std::string& hint);
    std::string constant(const std::string& type, const std::string& literal, const std::string& hint);
    std::string body_;
    std::map<std::string, std::string> constants_;  // "type|literal" -> variable
    std::map<std::string, int> used_;
    BlobMap blobs_;
};

std::string shape_text(const Dims& shape);  // "[1, 64, 1, 128]"

}  // namespace ane::mil
