// The MIL parser and interpreter: the spec's illustrative program (spec/ane.md §4) computes
// its documented function; malformed programs get one-line errors with a position.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>

#include "ane/half.hpp"
#include "ane/mil/interpreter.hpp"
#include "ane/mil/program.hpp"
#include "ane/mil/weight_blob.hpp"

namespace ane::mil {
namespace {

const char* kPrologue =
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, {\"coremlc-version\", "
    "\"3505.4.1\"}, {\"coremltools-component-milinternal\", \"\"}, {\"coremltools-version\", \"9.0\"}})]\n"
    "{\n";

// spec/ane.md §4, verbatim: a + sigmoid(b) ⊙ (Mᵀ-projection of a) + conv(a; Wc).
const char* kIllustrative = R"(    func main<ios18>(tensor<fp16, [1, 64, 1, 320]> x) {
        tensor<int32, [4]> at_a = const()[name=string("at_a"), val=tensor<int32, [4]>([0,0,0,0])];
        tensor<int32, [4]> at_b = const()[name=string("at_b"), val=tensor<int32, [4]>([0,0,0,128])];
        tensor<int32, [4]> at_m = const()[name=string("at_m"), val=tensor<int32, [4]>([0,0,0,256])];
        tensor<int32, [4]> len_s = const()[name=string("len_s"), val=tensor<int32, [4]>([1,64,1,128])];
        tensor<int32, [4]> len_m = const()[name=string("len_m"), val=tensor<int32, [4]>([1,64,1,64])];
        tensor<fp16, [1,64,1,128]> act = slice_by_size(x=x,begin=at_a,size=len_s)[name=string("act")];
        tensor<fp16, [1,64,1,128]> gte = slice_by_size(x=x,begin=at_b,size=len_s)[name=string("gte")];
        tensor<fp16, [1,64,1,64]> mat = slice_by_size(x=x,begin=at_m,size=len_m)[name=string("mat")];
        tensor<int32, [4]> sq_a = const()[name=string("sq_a"), val=tensor<int32, [4]>([1,1,64,128])];
        tensor<int32, [4]> sq_m = const()[name=string("sq_m"), val=tensor<int32, [4]>([1,1,64,64])];
        tensor<int32, [4]> swap = const()[name=string("swap"), val=tensor<int32, [4]>([0,1,3,2])];
        tensor<fp16, [1,1,64,128]> a4 = reshape(shape=sq_a,x=act)[name=string("a4")];
        tensor<fp16, [1,1,128,64]> at = transpose(perm=swap,x=a4)[name=string("at")];
        tensor<fp16, [1,1,64,64]> m4 = reshape(shape=sq_m,x=mat)[name=string("m4")];
        bool no = const()[name=string("no"), val=bool(false)];
        tensor<fp16, [1,1,128,64]> pr = matmul(transpose_x=no,transpose_y=no,x=at,y=m4)[name=string("pr")];
        tensor<fp16, [1,1,64,128]> pt4 = transpose(perm=swap,x=pr)[name=string("pt4")];
        tensor<fp16, [1,64,1,128]> proj = reshape(shape=len_s,x=pt4)[name=string("proj")];
        tensor<fp16, [1,64,1,128]> sg = sigmoid(x=gte)[name=string("sg")];
        tensor<fp16, [1,64,1,128]> gp = mul(x=sg,y=proj)[name=string("gp")];
        tensor<fp16, [64, 64, 1, 1]> Wc = const()[name=string("Wc"), val=tensor<fp16, [64, 64, 1, 1]>(BLOBFILE(path=string("@model_path/weights/wc.bin"), offset=uint64(64)))];
        tensor<int32, [2]> one2 = const()[name=string("one2"), val=tensor<int32, [2]>([1, 1])];
        tensor<int32, [4]> zero4 = const()[name=string("zero4"), val=tensor<int32, [4]>([0, 0, 0, 0])];
        int32 g1 = const()[name=string("g1"), val=int32(1)];
        string vld = const()[name=string("vld"), val=string("valid")];
        tensor<fp16, [1,64,1,128]> cv = conv(dilations=one2,groups=g1,pad=zero4,pad_type=vld,strides=one2,weight=Wc,x=act)[name=string("cv")];
        tensor<fp16, [1,64,1,128]> s1 = add(x=act,y=gp)[name=string("s1")];
        tensor<fp16, [1,64,1,128]> out = add(x=s1,y=cv)[name=string("out")];
    } -> (out);
}
)";

std::vector<float> random_fp16(std::size_t n, float scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = fp16_to_float(float_to_fp16(d(rng)));
    return v;
}

BlobMap illustrative_blobs(const std::vector<float>& wc) {
    return {{"@model_path/weights/wc.bin", make_fp16_blob(wc.data(), wc.size())}};
}

TEST(MilProgram, IllustrativeProgramComputesItsFunction) {
    const int C = 64, S = 128;
    const std::vector<float> wc = random_fp16(std::size_t(C) * C, 0.125f, 1);
    const Program p = parse_program(std::string(kPrologue) + kIllustrative, illustrative_blobs(wc));
    EXPECT_EQ(p.input_type.str(), "tensor<fp16, [1, 64, 1, 320]>");
    EXPECT_EQ(p.output_type().str(), "tensor<fp16, [1, 64, 1, 128]>");
    const std::vector<float> x = random_fp16(std::size_t(C) * 320, 1.0f, 2);
    for (bool fp16_acc : {false, true}) {
        Interpreter run(p, {fp16_acc});
        std::vector<float> out(std::size_t(C) * S);
        run.run(x.data(), out.data());
        double worst = 0, scale = 0;
        for (int o = 0; o < C; ++o)
            for (int t = 0; t < S; ++t) {
                auto at = [&](int c, int s) { return double(x[std::size_t(c) * 320 + std::size_t(s)]); };
                double proj = 0, cv = 0;
                for (int c = 0; c < C; ++c) {
                    proj += at(c, t) * at(c, 256 + o);
                    cv += double(wc[std::size_t(o) * C + std::size_t(c)]) * at(c, t);
                }
                const double want = at(o, t) + proj / (1 + std::exp(-at(o, 128 + t))) + cv;
                worst = std::max(worst, std::fabs(want - double(out[std::size_t(o) * S + std::size_t(t)])));
                scale = std::max(scale, std::fabs(want));
            }
        // fp16 keeps 11 significant bits: a few roundings of values up to `scale` (a few units),
        // plus, with fp16 accumulation, one rounding per partial sum of the 64-term products.
        EXPECT_LT(worst, (fp16_acc ? 2e-2 : 5e-3) * scale) << "fp16 accumulation " << fp16_acc;
    }
}

TEST(MilProgram, AcceptsShapesWithAndWithoutSpaces) {
    const std::string body = R"(    func main<ios18>(tensor<fp16, [1,4,1,8]> x) {
        tensor<int32, [4]> sh = const()[name=string("sh"), val=tensor<int32, [4]>([1, 1, 4, 8])];
        tensor<fp16, [1, 1, 4, 8]> y = reshape(shape=sh,x=x)[name=string("y")];
        fp16 k = const()[name=string("k"), val=fp16(-1)];
        tensor<fp16, [1,1,4,8]> z = mul(x=y,y=k)[name=string("z")];
        int32 ax = const()[name=string("ax"), val=int32(3)];
        bool no = const()[name=string("no"), val=bool(false)];
        tensor<fp16, [1, 1, 4, 16]> w = concat(axis=ax,interleave=no,values=(y, z))[name=string("w")];
    } -> (w);
}
)";
    const Program p = parse_program(std::string(kPrologue) + body);
    Interpreter run(p);
    std::vector<float> x(32), out(64);
    for (int i = 0; i < 32; ++i) x[std::size_t(i)] = float(i);
    run.run(x.data(), out.data());
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 8; ++c) {
            EXPECT_EQ(out[std::size_t(r * 16 + c)], float(r * 8 + c));
            EXPECT_EQ(out[std::size_t(r * 16 + 8 + c)], -float(r * 8 + c));
        }
}

// Replaces the first occurrence of `from` in the illustrative program.
std::string broken(const std::string& from, const std::string& to) {
    std::string text = std::string(kPrologue) + kIllustrative;
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
}

struct Malformed {
    const char* what;
    std::string text;
    int line;
    const char* message;
};

TEST(MilProgram, MalformedProgramsGetOneLineErrorsWithAPosition) {
    const std::vector<float> wc = random_fp16(64 * 64, 0.1f, 3);
    std::vector<std::uint8_t> bad_blob = make_fp16_blob(wc.data(), wc.size());
    bad_blob[64] = 0;
    const std::vector<Malformed> cases = {
        {"version", broken("program(1.3)", "program(1.4)"), 1, "program version 1.4"},
        {"target", broken("main<ios18>", "main<ios17>"), 4, "target 'ios17'"},
        {"unknown op", broken("sigmoid(x=gte)", "tanh(x=gte)"), 23, "unknown operation 'tanh'"},
        {"undefined variable", broken("mul(x=sg,y=proj)", "mul(x=sg,y=prj)"), 24, "'prj' is not defined"},
        {"declared type", broken("tensor<fp16, [1,64,1,128]> gte", "tensor<fp16, [1,64,1,127]> gte"), 11,
         "slice_by_size gives tensor<fp16, [1, 64, 1, 128]>, declared"},
        {"missing argument", broken("transpose(perm=swap,x=a4)", "transpose(x=a4)"), 17, "missing argument 'perm'"},
        {"unknown argument", broken("sigmoid(x=gte)", "sigmoid(x=gte,y=gte)"), 23, "not an argument"},
        {"stray character", broken("bool no =", "bool no @"), 19, "unexpected character '@'"},
        {"unterminated string", broken("string(\"vld\")", "string(\"vld)"), 29, "unterminated string"},
        {"missing semicolon", broken("[name=string(\"s1\")];", "[name=string(\"s1\")]"), 32, "expected ';'"},
        {"slice out of range", broken("([0,0,0,256])", "([0,0,0,300])"), 12, "outside tensor<fp16, [1, 64, 1, 320]>"},
        {"reshape count", broken("([1,1,64,64])", "([1,1,64,65])"), 18, "changes the element count"},
        {"redefinition", broken("tensor<fp16, [1,64,1,128]> s1 =", "tensor<fp16, [1,64,1,128]> act ="), 31,
         "'act' is already defined"},
        {"inner dimensions", broken("matmul(transpose_x=no,transpose_y=no,x=at,y=m4)",
                                    "matmul(transpose_x=no,transpose_y=no,x=at,y=at)"),
         20, "inner dimensions"},
        {"missing weight file", broken("weights/wc.bin", "weights/wd.bin"), 25, "no weight file"},
        {"trailing text", std::string(kPrologue) + kIllustrative + "}\n", 35, "after the program's closing brace"},
        {"literal count", broken("val=tensor<int32, [4]>([0,0,0,0])", "val=tensor<int32, [4]>([0,0,0])"), 5,
         "literal has 3 values"},
        {"empty text", "", 1, "expected 'program'"},
    };
    const std::regex one_line(R"(^(\d+):(\d+): [^\n]+$)");
    for (const auto& c : cases) {
        const BlobMap blobs = illustrative_blobs(wc);
        try {
            (void)parse_program(c.text, blobs);
            ADD_FAILURE() << c.what << ": accepted";
        } catch (const ParseError& e) {
            const std::string msg = e.what();
            std::smatch m;
            EXPECT_TRUE(std::regex_match(msg, m, one_line)) << c.what << ": " << msg;
            EXPECT_EQ(e.line, c.line) << c.what << ": " << msg;
            EXPECT_NE(msg.find(c.message), std::string::npos) << c.what << ": " << msg;
        }
    }
    // A weight file whose descriptor is not one.
    try {
        (void)parse_program(std::string(kPrologue) + kIllustrative, {{"@model_path/weights/wc.bin", bad_blob}});
        ADD_FAILURE() << "bad blob accepted";
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line, 25);
        EXPECT_NE(std::string(e.what()).find("DEADBEEF"), std::string::npos) << e.what();
    }
}

TEST(MilProgram, WeightBlobHeaderIsTheSpecs) {
    const float values[3] = {1.0f, -2.0f, 0.5f};
    const auto blob = make_fp16_blob(values, 3);
    ASSERT_EQ(blob.size(), 128u + 6u);
    EXPECT_EQ(blob[0], 0x01);
    EXPECT_EQ(blob[4], 0x02);
    EXPECT_EQ(blob[64], 0xEF);
    EXPECT_EQ(blob[65], 0xBE);
    EXPECT_EQ(blob[66], 0xAD);
    EXPECT_EQ(blob[67], 0xDE);
    EXPECT_EQ(blob[68], 0x01);
    EXPECT_EQ(blob[72], 6);
    EXPECT_EQ(blob[80], 128);
    for (std::size_t i : {1u, 2u, 3u, 5u, 63u, 69u, 76u, 84u, 127u}) EXPECT_EQ(blob[i], 0) << i;
    EXPECT_EQ(read_fp16_blob(blob, 64, 3), std::vector<float>(values, values + 3));
    EXPECT_THROW(read_fp16_blob(blob, 64, 4), std::runtime_error);
    EXPECT_THROW(read_fp16_blob(blob, 0, 3), std::runtime_error);
}

}  // namespace
}  // namespace ane::mil
