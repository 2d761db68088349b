#pragma once
// Tokens of MIL text, each with its line and column (1-based).
#include <string>
#include <string_view>
#include <vector>

namespace ane::mil {

enum class Tok { ident, number, string, punct, arrow, end };

struct Token {
    Tok kind = Tok::end;
    std::string text;  // identifier, number as written, string contents, or the punctuation
    int line = 1, column = 1;
};

// Throws ParseError at the first character that starts no token.
std::vector<Token> tokenize(std::string_view text);

}  // namespace ane::mil
