#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex_split.hpp"

#include <pcre2.h>

#include <memory>

#include "ane/error.hpp"

namespace ane {

namespace {

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

struct MatchData {
    pcre2_match_data* data;
    explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {
        if (!data) throw Error("out of memory for a regex match");
    }
    ~MatchData() { pcre2_match_data_free(data); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
};

}  // namespace

RegexSplitter::RegexSplitter(const std::string& pattern) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    // Invalid UTF-8 in the text matches nothing instead of failing the whole match.
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
    if (!re) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(code, message, sizeof message);
        throw error("pre-tokenizer regex ", pattern, ": ", reinterpret_cast<const char*>(message), " at offset ",
                    offset);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // where JIT is unavailable, the interpreter runs
    code_ = re;
}

RegexSplitter::~RegexSplitter() { pcre2_code_free(as_code(code_)); }

RegexSplitter::RegexSplitter(RegexSplitter&& other) noexcept : code_(other.code_) { other.code_ = nullptr; }

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
    thread_local std::unique_ptr<MatchData> match;
    thread_local const void* match_for = nullptr;
    if (!match || match_for != code_) {
        match = std::make_unique<MatchData>(as_code(code_));
        match_for = code_;
    }
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::size_t at = 0, gap = 0;
    while (at < text.size()) {
        const int rc = pcre2_match(as_code(code_), subject, text.size(), at, 0, match->data, nullptr);
        if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a resource limit: the rest is one gap
        const PCRE2_SIZE* v = pcre2_get_ovector_pointer(match->data);
        std::size_t begin = v[0], end = v[1];
        if (end == begin) {  // an empty match: step over one byte (the patterns used never match empty)
            at = end + 1;
            continue;
        }
        if (begin > gap) out.push_back(text.substr(gap, begin - gap));
        out.push_back(text.substr(begin, end - begin));
        at = gap = end;
    }
    if (gap < text.size()) out.push_back(text.substr(gap));
}

}  // namespace ane
