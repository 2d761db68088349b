#include "lexer.hpp"

#include <cctype>

#include "ane/mil/program.hpp"

namespace ane::mil {

namespace {
bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
}  // namespace

std::vector<Token> tokenize(std::string_view s) {
    std::vector<Token> out;
    int line = 1, column = 1;
    std::size_t i = 0;
    auto advance = [&](std::size_t n) {
        for (std::size_t k = 0; k < n; ++k, ++i) {
            if (s[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
    };
    while (i < s.size()) {
        const char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            advance(1);
            continue;
        }
        Token t;
        t.line = line;
        t.column = column;
        std::size_t n = 1;
        if (ident_start(c)) {
            t.kind = Tok::ident;
            while (i + n < s.size() && ident_char(s[i + n])) ++n;
            t.text = std::string(s.substr(i, n));
        } else if (digit(c) || ((c == '-' || c == '+') && i + 1 < s.size() && (digit(s[i + 1]) || s[i + 1] == '.'))) {
            t.kind = Tok::number;
            while (i + n < s.size() && (digit(s[i + n]) || s[i + n] == '.')) ++n;
            if (i + n < s.size() && (s[i + n] == 'e' || s[i + n] == 'E')) {
                std::size_t m = n + 1;
                if (i + m < s.size() && (s[i + m] == '-' || s[i + m] == '+')) ++m;
                if (i + m < s.size() && digit(s[i + m])) {
                    n = m;
                    while (i + n < s.size() && digit(s[i + n])) ++n;
                }
            }
            t.text = std::string(s.substr(i, n));
        } else if (c == '"') {
            t.kind = Tok::string;
            while (i + n < s.size() && s[i + n] != '"' && s[i + n] != '\n') ++n;
            if (i + n >= s.size() || s[i + n] != '"') throw ParseError(line, column, "unterminated string");
            t.text = std::string(s.substr(i + 1, n - 1));
            ++n;
        } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '>') {
            t.kind = Tok::arrow;
            t.text = "->";
            n = 2;
        } else if (std::string_view("()[]{}<>,=;").find(c) != std::string_view::npos) {
            t.kind = Tok::punct;
            t.text = std::string(1, c);
        } else {
            throw ParseError(line, column,
                             std::isprint(static_cast<unsigned char>(c)) ? std::string("unexpected character '") + c + "'"
                                                                         : "unexpected byte");
        }
        advance(n);
        out.push_back(std::move(t));
    }
    Token end;
    end.kind = Tok::end;
    end.line = line;
    end.column = column;
    out.push_back(end);
    return out;
}

}  // namespace ane::mil
