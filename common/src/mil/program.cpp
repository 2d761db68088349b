// Recursive-descent parser for the MIL subset of spec/ane.md §3, with type inference per op.
#include "ane/mil/program.hpp"

#include <charconv>
#include <cmath>
#include <set>
#include <unordered_map>

#include "ane/half.hpp"
#include "ane/mil/weight_blob.hpp"
#include "lexer.hpp"
#include "type_rules.hpp"

namespace ane::mil {

ParseError::ParseError(int l, int c, const std::string& what)
    : Error(std::to_string(l) + ":" + std::to_string(c) + ": " + what), line(l), column(c) {}

std::int64_t Type::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return tensor ? n : 1;
}

std::string Type::str() const {
    const char* base = dtype == DType::fp16 ? "fp16" : dtype == DType::int32 ? "int32" : dtype == DType::boolean ? "bool" : "string";
    if (!tensor) return base;
    std::string s = std::string("tensor<") + base + ", [";
    for (std::size_t k = 0; k < shape.size(); ++k) s.append(k ? ", " : "").append(std::to_string(shape[k]));
    return s + "]>";
}

const char* op_name(Op op) {
    static const char* names[] = {"const", "slice_by_size", "reshape", "transpose", "matmul",     "mul",   "add",
                                  "sub",   "sigmoid",       "softmax", "reduce_sum", "concat", "conv"};
    return names[int(op)];
}

const Argument& Statement::arg(std::string_view name) const {
    for (const auto& a : arguments)
        if (a.name == name) return a;
    throw ParseError(line, column, std::string(op_name(op)) + ": no argument '" + std::string(name) + "'");
}

const Constant& Program::constant(int variable) const {
    if (variable <= 0 || statements[std::size_t(variable - 1)].op != Op::constant)
        throw std::logic_error("variable is not a constant");
    return statements[std::size_t(variable - 1)].value;
}

namespace {

class Parser {
public:
    Parser(std::string_view text, const BlobMap& blobs) : toks_(tokenize(text)), blobs_(blobs) {}

    Program parse() {
        header();
        function();
        expect_punct("}");
        if (peek().kind != Tok::end) fail(peek(), "text after the program's closing brace");
        return std::move(prog_);
    }

private:
    std::vector<Token> toks_;
    std::size_t pos_ = 0;
    const BlobMap& blobs_;
    Program prog_;
    std::unordered_map<std::string, int> vars_;
    std::set<std::string> labels_;

    const Token& peek() const { return toks_[pos_]; }
    const Token& next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
    [[noreturn]] static void fail(const Token& t, const std::string& what) { throw ParseError(t.line, t.column, what); }
    static std::string describe(const Token& t) {
        if (t.kind == Tok::end) return "the end of the text";
        if (t.kind == Tok::string) return "\"" + t.text + "\"";
        return "'" + t.text + "'";
    }
    bool at_punct(const char* p) const { return peek().kind == Tok::punct && peek().text == p; }
    void expect_punct(const char* p) {
        if (!at_punct(p)) fail(peek(), std::string("expected '") + p + "', found " + describe(peek()));
        next();
    }
    void expect_word(const char* w) {
        if (peek().kind != Tok::ident || peek().text != w)
            fail(peek(), std::string("expected '") + w + "', found " + describe(peek()));
        next();
    }
    const Token& expect(Tok kind, const char* what) {
        if (peek().kind != kind) fail(peek(), std::string("expected ") + what + ", found " + describe(peek()));
        return next();
    }
    std::string string_literal() { return expect(Tok::string, "a string").text; }
    // Items separated by commas up to `close`, which is consumed.
    template <typename Item>
    void comma_list(const char* close, Item&& item) {
        while (!at_punct(close)) {
            item();
            if (!at_punct(",")) break;
            next();
        }
        expect_punct(close);
    }

    void header() {
        expect_word("program");
        expect_punct("(");
        const Token& v = expect(Tok::number, "a version");
        if (v.text != "1.3") fail(v, "program version " + v.text + " (only 1.3 is known)");
        expect_punct(")");
        expect_punct("[");
        expect_word("buildInfo");
        expect_punct("=");
        expect_word("dict");
        expect_punct("<");
        expect_word("string");
        expect_punct(",");
        expect_word("string");
        expect_punct(">");
        expect_punct("(");
        expect_punct("{");
        while (at_punct("{")) {
            next();
            string_literal();
            expect_punct(",");
            string_literal();
            expect_punct("}");
            if (!at_punct(",")) break;
            next();
        }
        expect_punct("}");
        expect_punct(")");
        expect_punct("]");
        expect_punct("{");
    }

    std::int64_t integer(const Token& t, std::int64_t lo, std::int64_t hi) {
        std::int64_t v = 0;
        const char* b = t.text.data();
        const char* e = b + t.text.size();
        if (*b == '+') ++b;
        auto r = std::from_chars(b, e, v);
        if (r.ec != std::errc() || r.ptr != e) fail(t, "'" + t.text + "' is not an integer");
        if (v < lo || v > hi) fail(t, t.text + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return v;
    }
    float fp16_number(const Token& t) {
        char* end = nullptr;
        const double v = std::strtod(t.text.c_str(), &end);
        if (end != t.text.c_str() + t.text.size() || !std::isfinite(v)) fail(t, "'" + t.text + "' is not a number");
        if (std::fabs(v) > 65504.0) fail(t, t.text + " does not fit fp16");
        return fp16_to_float(float_to_fp16(float(v)));
    }

    Type type() {
        const Token& t = expect(Tok::ident, "a type");
        Type ty;
        if (t.text == "tensor") {
            ty.tensor = true;
            expect_punct("<");
            const Token& d = expect(Tok::ident, "an element type");
            if (d.text == "fp16")
                ty.dtype = DType::fp16;
            else if (d.text == "int32")
                ty.dtype = DType::int32;
            else
                fail(d, "tensor element type '" + d.text + "' (fp16 or int32)");
            expect_punct(",");
            expect_punct("[");
            comma_list("]", [&] { ty.shape.push_back(integer(expect(Tok::number, "a dimension"), 1, std::int64_t(1) << 31)); });
            if (ty.shape.empty() || ty.shape.size() > 4) fail(t, "tensors have rank 1 to 4");
            expect_punct(">");
            if (ty.numel() > (std::int64_t(1) << 31)) fail(t, "tensor of " + std::to_string(ty.numel()) + " elements is too large");
            return ty;
        }
        if (t.text == "fp16") return Type{DType::fp16, false, {}};
        if (t.text == "int32") return Type{DType::int32, false, {}};
        if (t.text == "bool") return Type{DType::boolean, false, {}};
        if (t.text == "string") return Type{DType::string, false, {}};
        fail(t, "unknown type '" + t.text + "'");
    }

    void function() {
        expect_word("func");
        expect_word("main");
        expect_punct("<");
        const Token& target = expect(Tok::ident, "a target");
        if (target.text != "ios18") fail(target, "target '" + target.text + "' (only ios18 is known)");
        expect_punct(">");
        expect_punct("(");
        const Token& tt = peek();
        prog_.input_type = type();
        if (!prog_.input_type.tensor || prog_.input_type.dtype != DType::fp16 || prog_.input_type.shape.size() != 4)
            fail(tt, "the input must be a rank-4 fp16 tensor");
        prog_.input_name = expect(Tok::ident, "the input's name").text;
        vars_[prog_.input_name] = 0;
        expect_punct(")");
        expect_punct("{");
        while (!at_punct("}")) statement();
        next();
        expect(Tok::arrow, "'->'");
        expect_punct("(");
        const Token& out = expect(Tok::ident, "the output's name");
        prog_.output = variable(out);
        if (!prog_.output_type().tensor || prog_.output_type().dtype != DType::fp16)
            fail(out, "the output must be an fp16 tensor");
        expect_punct(")");
        expect_punct(";");
    }

    int variable(const Token& t) {
        auto it = vars_.find(t.text);
        if (it == vars_.end()) fail(t, "'" + t.text + "' is not defined");
        return it->second;
    }

    void statement() {
        Statement st;
        const Token& start = peek();
        st.line = start.line;
        st.column = start.column;
        st.type = type();
        const Token& name = expect(Tok::ident, "a variable name");
        if (vars_.count(name.text)) fail(name, "'" + name.text + "' is already defined");
        st.variable = name.text;
        expect_punct("=");
        const Token& op = expect(Tok::ident, "an operation");
        st.op = op_from_name(op);
        expect_punct("(");
        comma_list(")", [&] {
            Argument a;
            const Token& an = expect(Tok::ident, "an argument name");
            a.name = an.text;
            a.line = an.line;
            a.column = an.column;
            for (const auto& other : st.arguments)
                if (other.name == a.name) fail(an, "argument '" + a.name + "' given twice");
            expect_punct("=");
            if (at_punct("(")) {
                next();
                a.tuple = true;
                comma_list(")", [&] { a.values.push_back(variable(expect(Tok::ident, "a variable"))); });
                if (a.values.empty()) fail(an, "empty tuple");
            } else {
                a.values.push_back(variable(expect(Tok::ident, "a variable")));
            }
            st.arguments.push_back(std::move(a));
        });
        expect_punct("[");
        expect_word("name");
        expect_punct("=");
        expect_word("string");
        expect_punct("(");
        const Token& label = expect(Tok::string, "a label");
        if (!labels_.insert(label.text).second) fail(label, "label \"" + label.text + "\" is already used");
        st.label = label.text;
        expect_punct(")");
        if (st.op == Op::constant) {
            if (!st.arguments.empty()) fail(op, "const takes no arguments");
            expect_punct(",");
            expect_word("val");
            expect_punct("=");
            literal(st);
        }
        expect_punct("]");
        expect_punct(";");
        if (st.op != Op::constant) {
            const Type got = infer_type(prog_, st);
            if (!(got == st.type)) fail(start, std::string(op_name(st.op)) + " gives " + got.str() + ", declared " + st.type.str());
        }
        prog_.statements.push_back(std::move(st));
        vars_[name.text] = int(prog_.statements.size());
    }

    Op op_from_name(const Token& t) {
        for (int k = 0; k <= int(Op::conv); ++k)
            if (t.text == op_name(Op(k))) return Op(k);
        fail(t, "unknown operation '" + t.text + "'");
    }

    void literal(Statement& st) {
        const Token& at = peek();
        const Type ty = type();
        if (!(ty == st.type)) fail(at, "value of type " + ty.str() + " for a variable declared " + st.type.str());
        expect_punct("(");
        Constant& c = st.value;
        if (ty.tensor) {
            if (peek().kind == Tok::ident && peek().text == "BLOBFILE") {
                blobfile(st);
            } else {
                expect_punct("[");
                comma_list("]", [&] {
                    const Token& n = expect(Tok::number, "a number");
                    if (ty.dtype == DType::int32)
                        c.i.push_back(std::int32_t(integer(n, INT32_MIN, INT32_MAX)));
                    else
                        c.f.push_back(fp16_number(n));
                });
                const std::size_t got = ty.dtype == DType::int32 ? c.i.size() : c.f.size();
                if (std::int64_t(got) != ty.numel())
                    fail(at, "literal has " + std::to_string(got) + " values, the type " + std::to_string(ty.numel()));
            }
        } else if (ty.dtype == DType::int32) {
            c.i.push_back(std::int32_t(integer(expect(Tok::number, "an integer"), INT32_MIN, INT32_MAX)));
        } else if (ty.dtype == DType::fp16) {
            c.f.push_back(fp16_number(expect(Tok::number, "a number")));
        } else if (ty.dtype == DType::boolean) {
            const Token& b = expect(Tok::ident, "true or false");
            if (b.text != "true" && b.text != "false") fail(b, "expected true or false, found '" + b.text + "'");
            c.b = b.text == "true";
        } else {
            c.s = string_literal();
        }
        expect_punct(")");
    }

    void blobfile(Statement& st) {
        const Token& at = next();
        if (st.type.dtype != DType::fp16) fail(at, "BLOBFILE constants are fp16 tensors");
        expect_punct("(");
        expect_word("path");
        expect_punct("=");
        expect_word("string");
        expect_punct("(");
        const Token& path = expect(Tok::string, "a path");
        expect_punct(")");
        expect_punct(",");
        expect_word("offset");
        expect_punct("=");
        expect_word("uint64");
        expect_punct("(");
        const Token& off = expect(Tok::number, "an offset");
        const std::int64_t offset = integer(off, 0, INT64_MAX);
        expect_punct(")");
        expect_punct(")");
        auto it = blobs_.find(path.text);
        if (it == blobs_.end()) fail(path, "no weight file \"" + path.text + "\" was given");
        try {
            st.value.f = read_fp16_blob(it->second, std::uint64_t(offset), st.type.numel());
        } catch (const std::runtime_error& e) {
            fail(path, "\"" + path.text + "\": " + e.what());
        }
    }
};

}  // namespace

Program parse_program(std::string_view text, const BlobMap& blobs) { return Parser(text, blobs).parse(); }

std::vector<std::string> hardware_warnings(const Program& p) {
    std::vector<std::string> out;
    for (const Statement& st : p.statements) {
        if (st.op != Op::matmul) continue;
        const Type& x = p.type_of(st.arg("x").values[0]);
        const bool tx = p.constant(st.arg("transpose_x").values[0]).b;
        const std::int64_t inner = tx ? x.shape[2] : x.shape[3];
        if (inner % 32 != 0)
            out.push_back("line " + std::to_string(st.line) + ": matmul \"" + st.label + "\" has inner dimension " +
                          std::to_string(inner) + ", not a multiple of 32: the ANE returns zeros (spec/ane.md §7)");
    }
    return out;
}

}  // namespace ane::mil
