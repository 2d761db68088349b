#pragma once
// A pre-tokenizer regex on PCRE2 (UTF and Unicode properties, JIT-compiled): splits text into
// the matches and the gaps between them, in order (Hugging Face's Split with "Isolated").
#include <string>
#include <string_view>
#include <vector>

namespace ane {

class RegexSplitter {
public:
    explicit RegexSplitter(const std::string& pattern);  // throws ane::Error with PCRE2's message
    ~RegexSplitter();
    RegexSplitter(RegexSplitter&& other) noexcept;
    RegexSplitter(const RegexSplitter&) = delete;
    RegexSplitter& operator=(const RegexSplitter&) = delete;
    RegexSplitter& operator=(RegexSplitter&&) = delete;

    // Appends the pieces of `text` to `out` (views into `text`).
    void split(std::string_view text, std::vector<std::string_view>& out) const;

private:
    void* code_ = nullptr;  // pcre2_code_8
};

}  // namespace ane
