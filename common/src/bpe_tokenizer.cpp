#include "ane/bpe_tokenizer.hpp"

#include <omp.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <utility>
#include <unordered_map>

#include "ane/error.hpp"
#include "regex_split.hpp"

namespace ane {

const char* const kGpt2SplitPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// As Llama 3's and Qwen2's tokenizer.json spell them (llama.cpp spells the same regexes with
// character classes instead of (?i:...)).
const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const std::vector<std::pair<std::string, std::vector<std::string>>>& llama_cpp_pres() {
    static const std::vector<std::pair<std::string, std::vector<std::string>>> table = {
        {"gpt-2", {kGpt2SplitPattern}},
        {"llama-bpe", {kLlama3Pattern}},
        {"qwen2", {kQwen2Pattern}},
        {"smollm", {"\\p{N}", kGpt2SplitPattern}},  // Digits (one per piece), then GPT-2's
    };
    return table;
}

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 for U+0100 on.
struct ByteAlphabet {
    std::string of_byte[256];
    std::unordered_map<std::uint32_t, std::uint8_t> byte_of;  // code point -> byte
    ByteAlphabet() {
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const std::uint32_t cp = printable ? std::uint32_t(b) : std::uint32_t(next++);
            of_byte[b] = utf8(cp);
            byte_of[cp] = std::uint8_t(b);
        }
    }
    static std::string utf8(std::uint32_t cp) {
        std::string s;
        if (cp < 0x80) {
            s += char(cp);
        } else if (cp < 0x800) {
            s += char(0xC0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3F));
        } else {
            s += char(0xE0 | (cp >> 12));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        }
        return s;
    }
};

const ByteAlphabet& alphabet() {
    static const ByteAlphabet a;
    return a;
}

std::size_t utf8_length(unsigned char c) { return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; }

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string nfc(std::string_view s) {
    if (is_ascii(s)) return std::string(s);
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                                utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) return std::string(s);  // invalid UTF-8: left as it is
    std::string r(reinterpret_cast<const char*>(out), std::size_t(n));
    std::free(out);
    return r;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

class BpeTokenizer final : public Tokenizer {
public:
    BpeTokenizer(BpeVocabulary v, std::string origin) : v_(std::move(v)), origin_(std::move(origin)) {
        byte_ids_.fill(-1);
        if (!v_.byte_level()) mark_metaspace_kinds();
        for (int id = 0; id < int(v_.pieces.size()); ++id)
            if (v_.kinds[std::size_t(id)] == TokenKind::Normal) index_.emplace(v_.pieces[std::size_t(id)], id);
        for (const auto& a : v_.added) {
            require(a.id >= 0 && a.id < int(v_.pieces.size()) && !a.content.empty(), origin_, ": added token ",
                    a.content, " has id ", a.id, " outside the vocabulary");
            added_by_first_[static_cast<unsigned char>(a.content[0])].push_back(&a);
            added_ids_.emplace(a.id, &a);
        }
        for (auto& [first, list] : added_by_first_)  // longest first at a position
            std::sort(list.begin(), list.end(),
                      [](const AddedToken* a, const AddedToken* b) { return a->content.size() > b->content.size(); });
        merge_rank_.assign(v_.pieces.size(), -1);
        for (int rank = 0; rank < int(v_.merges.size()); ++rank) {
            const auto& [a, b] = v_.merges[std::size_t(rank)];
            const auto ia = index_.find(a), ib = index_.find(b), im = index_.find(a + b);
            require(ia != index_.end() && ib != index_.end() && im != index_.end(), origin_, ": merge ", rank, " (",
                    a, " ", b, ") names a token the vocabulary lacks");
            merges_.emplace(pair_key(ia->second, ib->second), Merge{rank, im->second});
            if (merge_rank_[std::size_t(im->second)] < 0) merge_rank_[std::size_t(im->second)] = rank;
        }
        for (const auto& p : v_.split_patterns) splitters_.emplace_back(p);
    }
    // Holds pointers into its own vocabulary.
    BpeTokenizer(const BpeTokenizer&) = delete;
    BpeTokenizer& operator=(const BpeTokenizer&) = delete;

    int vocab_size() const override { return int(v_.pieces.size()); }

    std::vector<int> encode(std::string_view text) const override {
        std::vector<int> ids;
        std::size_t start = 0;
        for (std::size_t i = 0; i < text.size();) {
            const AddedToken* a = added_at(text, i);
            if (!a) {
                ++i;
                continue;
            }
            std::size_t before = i, after = i + a->content.size();
            if (a->lstrip)
                while (before > start && is_space(text[before - 1])) --before;
            if (a->rstrip)
                while (after < text.size() && is_space(text[after])) ++after;
            encode_text(text.substr(start, before - start), ids, start == 0);
            ids.push_back(a->id);
            i = start = after;
        }
        encode_text(text.substr(start), ids, start == 0);
        return ids;
    }

    std::string decode(std::span<const int> ids) const override {
        using Strip = BpeVocabulary::PrefixStrip;
        std::string out;
        bool first = true;
        for (int id : ids) {
            // Ids past the vocabulary and unused ones (a GGUF's [PAD<id>] rows) stand for no text.
            if (id < 0 || id >= vocab_size() || v_.kinds[std::size_t(id)] == TokenKind::Unused) continue;
            const bool first_token = std::exchange(first, false);
            const std::string& p = v_.pieces[std::size_t(id)];
            if (const auto it = added_ids_.find(id); it != added_ids_.end()) {
                out += it->second->content;
            } else if (v_.byte_level()) {
                out += bytes_of(p);
            } else if (v_.kinds[std::size_t(id)] == TokenKind::Byte && v_.decode_byte_tokens) {
                out += char(std::stoi(p.substr(3, 2), nullptr, 16));
            } else {
                const bool drop = first_token && v_.prefix_strip == Strip::first_token;
                for (std::size_t i = 0; i < p.size();) {
                    if (p.compare(i, v_.metaspace.size(), v_.metaspace) == 0) {
                        if (!drop) out += ' ';
                        i += v_.metaspace.size();
                    } else {
                        out += p[i++];
                    }
                }
            }
        }
        if (v_.prefix_strip == Strip::leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
        return out;
    }

    // decode() spells special tokens out (as Hugging Face's decode does); a stream of generated
    // tokens prints them as nothing, as for the other tokenizers.
    std::string token_text(int prev, int id) const override {
        if (id < 0 || id >= vocab_size() || v_.kinds[std::size_t(id)] == TokenKind::Control) return "";
        return Tokenizer::token_text(prev, id);
    }

    std::string piece(int id) const override { return v_.pieces.at(std::size_t(id)); }
    TokenKind kind(int id) const override { return v_.kinds.at(std::size_t(id)); }
    // Metaspace vocabularies go to GGUF as llama.cpp's SentencePiece type, which merges the pair
    // whose result scores highest: a merge's result scores above every later merge's.
    float score(int id) const override {
        if (v_.byte_level()) return -float(id);
        const int rank = merge_rank_.at(std::size_t(id));
        return rank >= 0 ? -float(rank) : -float(v_.merges.size()) - float(id);
    }
    int bos_id() const override { return v_.bos; }
    int eos_id() const override { return v_.eos; }
    bool byte_level() const override { return v_.byte_level(); }
    const BpeVocabulary* bpe_vocabulary() const override { return &v_; }
    std::string describe() const override {
        return std::string(v_.byte_level() ? "byte-level BPE, " : v_.byte_fallback ? "BPE (Metaspace, byte fallback), "
                                                                                    : "BPE (Metaspace), ") +
               std::to_string(vocab_size()) + " tokens, " + std::to_string(v_.merges.size()) + " merges";
    }

private:
    struct Merge {
        int rank, id;
    };
    BpeVocabulary v_;
    std::string origin_;
    std::unordered_map<std::string, int> index_;
    std::unordered_map<std::uint64_t, Merge> merges_;
    std::unordered_map<unsigned char, std::vector<const AddedToken*>> added_by_first_;
    std::unordered_map<int, const AddedToken*> added_ids_;
    std::vector<RegexSplitter> splitters_;
    std::array<int, 256> byte_ids_;  // <0xNN> tokens of a byte-fallback vocabulary
    std::vector<int> merge_rank_;    // the first merge giving each token, -1 for none
    bool cut_before_runs_ = false;   // no token has ▁ after another character (Metaspace)

    // SentencePiece's kinds: <0xNN> pieces are bytes, the unknown token is Unknown.
    void mark_metaspace_kinds() {
        for (int id = 0; id < int(v_.pieces.size()); ++id) {
            const std::string& p = v_.pieces[std::size_t(id)];
            if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::isxdigit(static_cast<unsigned char>(p[3])) &&
                std::isxdigit(static_cast<unsigned char>(p[4]))) {
                v_.kinds[std::size_t(id)] = TokenKind::Byte;
                byte_ids_[std::size_t(std::stoi(p.substr(3, 2), nullptr, 16))] = id;
            }
        }
        if (v_.unk >= 0 && v_.unk < int(v_.kinds.size())) v_.kinds[std::size_t(v_.unk)] = TokenKind::Unknown;
        const std::string& m = v_.metaspace;
        cut_before_runs_ = std::none_of(v_.pieces.begin(), v_.pieces.end(), [&](const std::string& p) {
            for (auto at = p.find(m, 1); at != std::string::npos; at = p.find(m, at + 1))
                // A ▁ after something else (or after fewer bytes than a ▁ has).
                if (at < m.size() || p.compare(at - m.size(), m.size(), m) != 0) return true;
            return false;
        });
    }

    static std::uint64_t pair_key(int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }

    const AddedToken* added_at(std::string_view text, std::size_t i) const {
        const auto it = added_by_first_.find(static_cast<unsigned char>(text[i]));
        if (it == added_by_first_.end()) return nullptr;
        for (const AddedToken* a : it->second)
            if (text.compare(i, a->content.size(), a->content) == 0) return a;
        return nullptr;
    }

    // A token's bytes: its characters mapped back through the byte alphabet, or its own UTF-8
    // when one of them is outside it (as the ByteLevel decoder does).
    static std::string bytes_of(const std::string& piece) {
        std::string out;
        for (std::size_t i = 0; i < piece.size();) {
            utf8proc_int32_t cp = 0;
            const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(piece.data() + i),
                                            utf8proc_ssize_t(piece.size() - i), &cp);
            const auto it = n > 0 ? alphabet().byte_of.find(std::uint32_t(cp)) : alphabet().byte_of.end();
            if (it == alphabet().byte_of.end()) return piece;
            out += char(it->second);
            i += std::size_t(n);
        }
        return out;
    }

    // `at_start`: the stretch begins the text (no added token before it).
    void encode_text(std::string_view raw, std::vector<int>& ids, bool at_start) const {
        if (raw.empty()) return;
        std::string text = v_.nfc ? nfc(raw) : std::string(raw);
        if (!v_.byte_level()) return encode_metaspace(text, ids, at_start);
        if (v_.add_prefix_space && !text.empty() && text[0] != ' ') text.insert(text.begin(), ' ');
        std::vector<std::string_view> pieces{text}, next;
        for (const auto& s : splitters_) {
            next.clear();
            for (auto p : pieces) s.split(p, next);
            pieces.swap(next);
        }
        encode_pieces(pieces, ids);
    }

    // BPE per piece, each distinct piece once per thread (most pieces repeat); many pieces are
    // shared out in order across the threads, and their ids joined in that order.
    void encode_pieces(const std::vector<std::string_view>& pieces, std::vector<int>& ids) const {
        const std::size_t n = pieces.size();
        const int threads = n >= 8192 ? omp_get_max_threads() : 1;
        std::vector<std::vector<int>> part(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            std::unordered_map<std::string_view, std::vector<int>> cache;
            std::string mapped;
            std::vector<int>& out = part[std::size_t(t)];
            for (std::size_t i = n * std::size_t(t) / std::size_t(nt); i < n * std::size_t(t + 1) / std::size_t(nt); ++i) {
                auto [it, fresh] = cache.try_emplace(pieces[i]);
                if (fresh && !v_.byte_level()) {
                    encode_word(std::string(pieces[i]), it->second);
                } else if (fresh) {
                    mapped.clear();
                    for (char c : pieces[i]) mapped += alphabet().of_byte[static_cast<unsigned char>(c)];
                    encode_word(mapped, it->second);
                }
                out.insert(out.end(), it->second.begin(), it->second.end());
            }
        }
        for (const auto& p : part) ids.insert(ids.end(), p.begin(), p.end());
    }

    void encode_metaspace(const std::string& text, std::vector<int>& ids, bool at_start) const {
        using P = BpeVocabulary::Prepend;
        std::string spelled = v_.prepend == P::normalizer ? v_.metaspace : "";
        for (char c : text) {
            if (c == ' ') spelled += v_.metaspace;
            else spelled += c;
        }
        if ((v_.prepend == P::always || (v_.prepend == P::first && at_start)) && !spelled.starts_with(v_.metaspace))
            spelled.insert(0, v_.metaspace);
        // Metaspace's split: each ▁ begins a piece. Without it the stretch is one piece, but when
        // no token has a ▁ after another character no merge crosses the start of a ▁ run, so
        // cutting there gives the same tokens, faster.
        if (!v_.metaspace_split && !cut_before_runs_) return encode_word(spelled, ids);
        std::vector<std::string_view> pieces;
        const std::string_view all(spelled), m(v_.metaspace);
        std::size_t start = 0;
        for (std::size_t i = m.size(); i < all.size(); ++i) {
            if (all.compare(i, m.size(), m) != 0) continue;
            if (v_.metaspace_split || all.compare(i - m.size(), m.size(), m) != 0) {
                pieces.push_back(all.substr(start, i - start));
                start = i;
            }
            i += m.size() - 1;
        }
        pieces.push_back(all.substr(start));
        encode_pieces(pieces, ids);
    }

    // One pre-tokenized piece (in the byte alphabet): its characters, then the lowest-ranked
    // adjacent pair merged (leftmost among equals) until no pair has a merge.
    void encode_word(const std::string& word, std::vector<int>& ids) const {
        if (v_.ignore_merges)
            if (const auto it = index_.find(word); it != index_.end()) {
                ids.push_back(it->second);
                return;
            }
        std::vector<int> sym, prev, next;
        std::vector<std::string_view> chars;  // each symbol's text before merging (for byte fallback)
        const std::string_view w(word);
        for (std::size_t i = 0; i < w.size();) {
            const std::size_t len = std::min(utf8_length(static_cast<unsigned char>(w[i])), w.size() - i);
            chars.push_back(w.substr(i, len));
            const auto it = index_.find(std::string(chars.back()));
            sym.push_back(it != index_.end() ? it->second : -1);
            i += len;
        }
        const int n = int(sym.size());
        bool after_unk = false;
        if (n == 1) {
            push_symbol(sym[0], chars[0], ids, after_unk);
            return;
        }
        prev.resize(std::size_t(n));
        next.resize(std::size_t(n));
        for (int i = 0; i < n; ++i) {
            prev[std::size_t(i)] = i - 1;
            next[std::size_t(i)] = i + 1 < n ? i + 1 : -1;
        }
        struct Candidate {
            int rank, left, right_id, left_id;
            bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
        };
        std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
        const auto consider = [&](int left) {
            const int right = next[std::size_t(left)];
            if (right < 0 || sym[std::size_t(left)] < 0 || sym[std::size_t(right)] < 0) return;
            const auto it = merges_.find(pair_key(sym[std::size_t(left)], sym[std::size_t(right)]));
            if (it != merges_.end()) queue.push({it->second.rank, left, sym[std::size_t(right)], sym[std::size_t(left)]});
        };
        for (int i = 0; i + 1 < n; ++i) consider(i);
        while (!queue.empty()) {
            const Candidate c = queue.top();
            queue.pop();
            const int right = next[std::size_t(c.left)];
            // Stale: either side has merged since this candidate was queued.
            if (right < 0 || sym[std::size_t(c.left)] != c.left_id || sym[std::size_t(right)] != c.right_id) continue;
            sym[std::size_t(c.left)] = merges_.at(pair_key(c.left_id, c.right_id)).id;
            sym[std::size_t(right)] = -2;  // removed
            next[std::size_t(c.left)] = next[std::size_t(right)];
            if (next[std::size_t(right)] >= 0) prev[std::size_t(next[std::size_t(right)])] = c.left;
            if (prev[std::size_t(c.left)] >= 0) consider(prev[std::size_t(c.left)]);
            consider(c.left);
        }
        for (int i = 0; i >= 0; i = next[std::size_t(i)]) push_symbol(sym[std::size_t(i)], chars[std::size_t(i)], ids, after_unk);
    }

    // A character outside the vocabulary (byte-level ones hold all 256): its byte tokens with
    // byte fallback, else the unknown token (one for a run of them with fuse_unk).
    void push_symbol(int id, std::string_view text, std::vector<int>& ids, bool& after_unk) const {
        if (id >= 0) {
            ids.push_back(id);
            after_unk = false;
            return;
        }
        if (v_.byte_fallback && std::all_of(text.begin(), text.end(), [&](char c) {
                return byte_ids_[static_cast<unsigned char>(c)] >= 0;
            })) {
            for (char c : text) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
            after_unk = false;
            return;
        }
        if (v_.unk >= 0 && !(v_.fuse_unk && after_unk)) ids.push_back(v_.unk);
        after_unk = true;
    }
};

}  // namespace

std::vector<std::string> split_patterns_of_llama_cpp_pre(const std::string& name) {
    const std::string canonical = name == "default" || name == "gpt2" ? "gpt-2" : name == "llama3" ? "llama-bpe" : name;
    for (const auto& [n, patterns] : llama_cpp_pres())
        if (n == canonical) return patterns;
    std::string known;
    for (const auto& [n, patterns] : llama_cpp_pres()) known += (known.empty() ? "" : ", ") + n;
    throw error("pre-tokenizer '", name, "' is not supported (known: ", known, ")");
}

std::string llama_cpp_pre_of(const std::vector<std::string>& split_patterns) {
    for (const auto& [n, patterns] : llama_cpp_pres())
        if (patterns == split_patterns) return n;
    return "";
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeVocabulary vocab, std::string origin) {
    return std::make_unique<BpeTokenizer>(std::move(vocab), std::move(origin));
}

}  // namespace ane
