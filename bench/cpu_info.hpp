#pragma once
// What the benchmarks print about the machine: the CPU's name, family and model (a name such
// as "Intel(R) Xeon(R) Processor" alone does not say which), and its widest vector ISA.
#include <fstream>
#include <string>

inline std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, name = "unknown CPU", family, model;
    auto value = [&] { return line.substr(line.find(':') + 2); };
    while (std::getline(in, line) && (family.empty() || model.empty() || name == "unknown CPU")) {
        if (line.rfind("model name", 0) == 0) name = value();
        else if (line.rfind("cpu family", 0) == 0) family = value();
        else if (line.rfind("model", 0) == 0 && line.find(':') < 10) model = value();
    }
    if (!family.empty()) name += ", family " + family + " model " + model;
#if defined(__x86_64__)
    name += __builtin_cpu_supports("avx512bf16") ? ", AVX-512 with BF16"
            : __builtin_cpu_supports("avx512f")  ? ", AVX-512"
            : __builtin_cpu_supports("avx2")     ? ", AVX2"
                                                 : ", SSE only";
#endif
    return name;
}
