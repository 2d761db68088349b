#pragma once
// A MIL program as the ANE kernels are written (spec/ane.md §3): parsed, every variable's type
// checked against what its op produces, constants (BLOBFILE ones included) loaded. Anything
// outside that grammar or op table is refused with "line:column: what is wrong".
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ane/error.hpp"

namespace ane::mil {

// Weight files by the path the program names ("@model_path/weights/mask.bin").
using BlobMap = std::map<std::string, std::vector<std::uint8_t>>;

class ParseError : public Error {
public:
    ParseError(int line, int column, const std::string& what);
    int line, column;
};

enum class DType { fp16, int32, boolean, string };

struct Type {
    DType dtype = DType::fp16;
    bool tensor = false;
    std::vector<std::int64_t> shape;  // tensors only
    std::int64_t numel() const;
    std::string str() const;
    bool operator==(const Type&) const = default;
};

// A constant's value. fp16 values are kept as float (each exactly an fp16 value).
struct Constant {
    std::vector<float> f;
    std::vector<std::int32_t> i;
    bool b = false;
    std::string s;
};

struct Argument {
    std::string name;
    std::vector<int> values;  // indices of the variables (one, or a tuple's members)
    bool tuple = false;
    int line = 0, column = 0;
};

enum class Op { constant, slice_by_size, reshape, transpose, matmul, mul, add, sub, sigmoid, softmax, reduce_sum,
                concat, conv };
const char* op_name(Op op);

struct Statement {
    int line = 0, column = 0;
    Op op = Op::constant;
    std::string variable, label;
    Type type;
    std::vector<Argument> arguments;
    Constant value;  // const only
    const Argument& arg(std::string_view name) const;
};

// Variable 0 is the function's input; statement k defines variable k + 1.
struct Program {
    std::string input_name;
    Type input_type;
    std::vector<Statement> statements;
    int output = 0;  // the returned variable
    const Type& type_of(int variable) const {
        return variable == 0 ? input_type : statements[std::size_t(variable - 1)].type;
    }
    const Type& output_type() const { return type_of(output); }
    // The constant behind a variable defined by const (throws otherwise).
    const Constant& constant(int variable) const;
};

Program parse_program(std::string_view text, const BlobMap& blobs = {});

// What the real Neural Engine would do differently from the interpreter (spec/ane.md §7): a
// matmul whose inner dimension is not a multiple of 32 returns zeros there. One line per op.
std::vector<std::string> hardware_warnings(const Program& program);

}  // namespace ane::mil
