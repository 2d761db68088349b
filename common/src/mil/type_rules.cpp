#include "type_rules.hpp"

#include <algorithm>
#include <initializer_list>

namespace ane::mil {

bool broadcast_shape(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                     std::vector<std::int64_t>& out) {
    const std::size_t n = std::max(a.size(), b.size());
    out.assign(n, 1);
    for (std::size_t k = 0; k < n; ++k) {
        const std::int64_t da = k < n - a.size() ? 1 : a[k - (n - a.size())];
        const std::int64_t db = k < n - b.size() ? 1 : b[k - (n - b.size())];
        if (da != db && da != 1 && db != 1) return false;
        out[k] = std::max(da, db);
    }
    return true;
}

namespace {

class Checker {
public:
    Checker(const Program& p, const Statement& s) : prog_(p), st_(s) {}

    Type run() {
        switch (st_.op) {
            case Op::slice_by_size: return slice();
            case Op::reshape: return reshape();
            case Op::transpose: return transpose();
            case Op::matmul: return matmul();
            case Op::mul:
            case Op::add:
            case Op::sub: return binary();
            case Op::sigmoid:
                takes({"x"});
                return fp16_tensor("x");
            case Op::softmax: {
                takes({"axis", "x"});
                const Type t = fp16_tensor("x");
                axis_of(t, int_scalar("axis"), "axis");
                return t;
            }
            case Op::reduce_sum: return reduce_sum();
            case Op::concat: return concat();
            case Op::conv: return conv();
            case Op::constant: break;
        }
        fail(st_.line, st_.column, "const without a value");
    }

private:
    const Program& prog_;
    const Statement& st_;

    [[noreturn]] static void fail(int line, int column, const std::string& what) { throw ParseError(line, column, what); }
    [[noreturn]] void fail_at(const Argument& a, const std::string& what) const {
        fail(a.line, a.column, std::string(op_name(st_.op)) + ": " + a.name + ": " + what);
    }

    void takes(std::initializer_list<const char*> names) const {
        for (const auto& a : st_.arguments)
            if (std::find_if(names.begin(), names.end(), [&](const char* n) { return a.name == n; }) == names.end())
                fail_at(a, "not an argument of this operation");
        for (const char* n : names)
            if (std::none_of(st_.arguments.begin(), st_.arguments.end(), [&](const Argument& a) { return a.name == n; }))
                fail(st_.line, st_.column, std::string(op_name(st_.op)) + ": missing argument '" + n + "'");
    }
    const Argument& arg(const char* name) const {
        const Argument& a = st_.arg(name);
        if (a.tuple) fail_at(a, "a tuple where one variable is expected");
        return a;
    }
    const Type& type_of(const char* name) const { return prog_.type_of(arg(name).values[0]); }
    Type fp16_tensor(const char* name) const {
        const Type& t = type_of(name);
        if (!t.tensor || t.dtype != DType::fp16) fail_at(arg(name), "expected an fp16 tensor, found " + t.str());
        return t;
    }
    const Constant& constant(const char* name, const Type& want) const {
        const Argument& a = arg(name);
        const Type& t = prog_.type_of(a.values[0]);
        if (!(t == want)) fail_at(a, "expected " + want.str() + ", found " + t.str());
        const int v = a.values[0];
        if (v == 0 || prog_.statements[std::size_t(v - 1)].op != Op::constant) fail_at(a, "must be a constant");
        return prog_.constant(v);
    }
    std::vector<std::int32_t> ints(const char* name, std::int64_t n) const {
        return constant(name, Type{DType::int32, true, {n}}).i;
    }
    std::int32_t int_scalar(const char* name) const { return constant(name, Type{DType::int32, false, {}}).i[0]; }
    bool boolean(const char* name) const { return constant(name, Type{DType::boolean, false, {}}).b; }
    int axis_of(const Type& t, std::int32_t axis, const char* name) const {
        const int rank = int(t.shape.size());
        if (axis < -rank || axis >= rank)
            fail_at(arg(name), "axis " + std::to_string(axis) + " outside a rank-" + std::to_string(rank) + " tensor");
        return axis < 0 ? axis + rank : axis;
    }
    Type rank4(const char* name) const {
        const Type t = fp16_tensor(name);
        if (t.shape.size() != 4) fail_at(arg(name), "expected a rank-4 tensor, found " + t.str());
        return t;
    }

    Type slice() const {
        takes({"x", "begin", "size"});
        const Type x = rank4("x");
        const auto begin = ints("begin", 4), size = ints("size", 4);
        Type out = x;
        for (int k = 0; k < 4; ++k) {
            if (begin[k] < 0 || size[k] < 1 || std::int64_t(begin[k]) + size[k] > x.shape[k])
                fail_at(arg("size"), "slice [" + std::to_string(begin[k]) + ", +" + std::to_string(size[k]) +
                                         ") of axis " + std::to_string(k) + " outside " + x.str());
            out.shape[k] = size[k];
        }
        return out;
    }
    Type reshape() const {
        takes({"shape", "x"});
        const Type x = fp16_tensor("x");
        const auto shape = ints("shape", 4);
        Type out = x;
        out.shape.assign(shape.begin(), shape.end());
        for (auto d : out.shape)
            if (d < 1) fail_at(arg("shape"), "dimensions must be positive");
        if (out.numel() != x.numel()) fail_at(arg("shape"), "reshape of " + x.str() + " to " + out.str() + " changes the element count");
        return out;
    }
    Type transpose() const {
        takes({"perm", "x"});
        const Type x = rank4("x");
        const auto perm = ints("perm", 4);
        Type out = x;
        std::vector<bool> seen(4, false);
        for (int k = 0; k < 4; ++k) {
            if (perm[k] < 0 || perm[k] > 3 || seen[std::size_t(perm[k])]) fail_at(arg("perm"), "not a permutation of 0..3");
            seen[std::size_t(perm[k])] = true;
            out.shape[k] = x.shape[std::size_t(perm[k])];
        }
        return out;
    }
    Type matmul() const {
        takes({"transpose_x", "transpose_y", "x", "y"});
        const Type x = rank4("x"), y = rank4("y");
        const bool tx = boolean("transpose_x"), ty = boolean("transpose_y");
        if (x.shape[0] != y.shape[0] || x.shape[1] != y.shape[1])
            fail_at(arg("y"), "batch axes of " + x.str() + " and " + y.str() + " differ");
        const std::int64_t m = tx ? x.shape[3] : x.shape[2], kx = tx ? x.shape[2] : x.shape[3];
        const std::int64_t ky = ty ? y.shape[3] : y.shape[2], n = ty ? y.shape[2] : y.shape[3];
        if (kx != ky) fail_at(arg("y"), "inner dimensions " + std::to_string(kx) + " and " + std::to_string(ky) + " differ");
        return Type{DType::fp16, true, {x.shape[0], x.shape[1], m, n}};
    }
    Type binary() const {
        takes({"x", "y"});
        const Type& x = type_of("x");
        const Type& y = type_of("y");
        for (const char* n : {"x", "y"}) {
            const Type& t = type_of(n);
            if (t.dtype != DType::fp16) fail_at(arg(n), "expected fp16, found " + t.str());
        }
        Type out{DType::fp16, x.tensor || y.tensor, {}};
        if (!broadcast_shape(x.shape, y.shape, out.shape))
            fail_at(arg("y"), x.str() + " and " + y.str() + " do not broadcast");
        return out;
    }
    Type reduce_sum() const {
        takes({"x", "axes", "keep_dims"});
        Type t = fp16_tensor("x");
        const auto axes = ints("axes", 1);
        const int axis = axis_of(t, axes[0], "axes");
        if (boolean("keep_dims")) {
            t.shape[std::size_t(axis)] = 1;
        } else {
            t.shape.erase(t.shape.begin() + axis);
            if (t.shape.empty()) t.tensor = false;
        }
        return t;
    }
    Type concat() const {
        takes({"axis", "interleave", "values"});
        if (boolean("interleave")) fail_at(st_.arg("interleave"), "only interleave=false is supported");
        const Argument& values = st_.arg("values");
        if (!values.tuple) fail_at(values, "expected a tuple");
        Type out;
        int axis = 0;
        for (std::size_t k = 0; k < values.values.size(); ++k) {
            const Type& t = prog_.type_of(values.values[k]);
            if (!t.tensor || t.dtype != DType::fp16) fail_at(values, "member " + std::to_string(k) + " is " + t.str());
            if (k == 0) {
                out = t;
                axis = axis_of(t, int_scalar("axis"), "axis");
                continue;
            }
            if (t.shape.size() != out.shape.size()) fail_at(values, "members of different ranks");
            for (std::size_t d = 0; d < t.shape.size(); ++d)
                if (int(d) != axis && t.shape[d] != out.shape[d])
                    fail_at(values, "member " + std::to_string(k) + " " + t.str() + " does not match " + out.str() +
                                        " off axis " + std::to_string(axis));
            out.shape[std::size_t(axis)] += t.shape[std::size_t(axis)];
        }
        return out;
    }
    Type conv() const {
        takes({"dilations", "groups", "pad", "pad_type", "strides", "weight", "x"});
        const Type x = rank4("x"), w = rank4("weight");
        if (ints("dilations", 2) != std::vector<std::int32_t>{1, 1}) fail_at(arg("dilations"), "only [1, 1] is supported");
        if (ints("strides", 2) != std::vector<std::int32_t>{1, 1}) fail_at(arg("strides"), "only [1, 1] is supported");
        if (ints("pad", 4) != std::vector<std::int32_t>{0, 0, 0, 0}) fail_at(arg("pad"), "only [0, 0, 0, 0] is supported");
        if (int_scalar("groups") != 1) fail_at(arg("groups"), "only 1 is supported");
        if (constant("pad_type", Type{DType::string, false, {}}).s != "valid")
            fail_at(arg("pad_type"), "only \"valid\" is supported");
        if (w.shape[2] != 1 || w.shape[3] != 1) fail_at(arg("weight"), "only 1x1 kernels are supported, found " + w.str());
        if (x.shape[0] != 1 || x.shape[2] != 1) fail_at(arg("x"), "expected [1, C, 1, S], found " + x.str());
        if (w.shape[1] != x.shape[1])
            fail_at(arg("weight"), "takes " + std::to_string(w.shape[1]) + " channels, x has " + std::to_string(x.shape[1]));
        return Type{DType::fp16, true, {1, w.shape[0], 1, x.shape[3]}};
    }
};

}  // namespace

Type infer_type(const Program& prog, const Statement& st) { return Checker(prog, st).run(); }

}  // namespace ane::mil
