#include "mil_writer.hpp"

#include "ane/mil/weight_blob.hpp"

namespace ane::mil {

std::string shape_text(const Dims& shape) {
    std::string s = "[";
    for (std::size_t k = 0; k < shape.size(); ++k) s.append(k ? ", " : "").append(std::to_string(shape[k]));
    return s + "]";
}

namespace {
std::string tensor_type(const Dims& shape) { return "tensor<fp16, " + shape_text(shape) + ">"; }
}  // namespace

MilWriter::MilWriter(int channels, int spatial) {
    body_ =
        "program(1.3)\n"
        "[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, {\"coremlc-version\", "
        "\"3505.4.1\"}, {\"coremltools-component-milinternal\", \"\"}, {\"coremltools-version\", \"9.0\"}})]\n"
        "{\n"
        "    func main<ios18>(" + tensor_type({1, channels, 1, spatial}) + " x) {\n";
    used_["x"] = 1;
}

std::string MilWriter::fresh(const std::string& hint) {
    const int n = used_[hint]++;
    return n == 0 ? hint : hint + "_" + std::to_string(n);
}

std::string MilWriter::constant(const std::string& type, const std::string& literal, const std::string& hint) {
    const std::string key = type + "|" + literal;
    auto it = constants_.find(key);
    if (it != constants_.end()) return it->second;
    const std::string v = fresh(hint);
    body_ += "        " + type + " " + v + " = const()[name=string(\"" + v + "\"), val=" + type + "(" + literal + ")];\n";
    constants_[key] = v;
    return v;
}

std::string MilWriter::ints(const std::vector<int>& values) {
    std::string lit = "[";
    for (std::size_t k = 0; k < values.size(); ++k) lit.append(k ? "," : "").append(std::to_string(values[k]));
    lit += "]";
    return constant("tensor<int32, [" + std::to_string(values.size()) + "]>", lit, "c");
}

std::string MilWriter::int32(int value) { return constant("int32", std::to_string(value), "i"); }
std::string MilWriter::boolean(bool value) { return constant("bool", value ? "true" : "false", value ? "yes" : "no"); }
std::string MilWriter::text(const std::string& value) { return constant("string", "\"" + value + "\"", "s"); }

std::string MilWriter::fp16(float value, const char* format) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, double(value));
    return constant("fp16", buf, "k");
}

std::string MilWriter::blob(const Dims& shape, const std::string& file, const std::vector<float>& values) {
    const std::string path = "@model_path/weights/" + file;
    blobs_[path] = make_fp16_blob(values.data(), values.size());
    const std::string v = fresh(file.substr(0, file.find('.')));
    const std::string type = tensor_type(shape);
    body_ += "        " + type + " " + v + " = const()[name=string(\"" + v + "\"), val=" + type +
             "(BLOBFILE(path=string(\"" + path + "\"), offset=uint64(64)))];\n";
    return v;
}

std::string MilWriter::op(const std::string& hint, const Dims& shape, const std::string& op, const std::string& args) {
    const std::string v = fresh(hint);
    body_ += "        " + tensor_type(shape) + " " + v + " = " + op + "(" + args + ")[name=string(\"" + v + "\")];\n";
    return v;
}

std::string MilWriter::slice(const std::string& x, const Dims& begin, const Dims& size, const std::string& hint) {
    const std::string b = ints({int(begin[0]), int(begin[1]), int(begin[2]), int(begin[3])});
    const std::string s = ints({int(size[0]), int(size[1]), int(size[2]), int(size[3])});
    return op(hint, size, "slice_by_size", "x=" + x + ",begin=" + b + ",size=" + s);
}

std::string MilWriter::reshape(const std::string& x, const Dims& shape, const std::string& hint) {
    const std::string s = ints({int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3])});
    return op(hint, shape, "reshape", "shape=" + s + ",x=" + x);
}

std::string MilWriter::swap_last(const std::string& x, const Dims& in, const std::string& hint) {
    return op(hint, {in[0], in[1], in[3], in[2]}, "transpose", "perm=" + ints({0, 1, 3, 2}) + ",x=" + x);
}

std::string MilWriter::matmul(const std::string& x, const std::string& y, bool tx, bool ty, const Dims& out,
                              const std::string& hint) {
    return op(hint, out, "matmul",
              "transpose_x=" + boolean(tx) + ",transpose_y=" + boolean(ty) + ",x=" + x + ",y=" + y);
}

std::string MilWriter::concat(const std::vector<std::string>& values, int axis, const Dims& out, const std::string& hint) {
    std::string tuple = "(";
    for (std::size_t k = 0; k < values.size(); ++k) tuple += (k ? "," : "") + values[k];
    tuple += ")";
    return op(hint, out, "concat", "axis=" + int32(axis) + ",interleave=" + boolean(false) + ",values=" + tuple);
}

std::string MilWriter::finish(const std::string& output) { return body_ + "    } -> (" + output + ");\n}\n"; }

}  // namespace ane::mil
