#include "ane/score_tokenizer.hpp"

#include <algorithm>
#include <cstring>
#include <queue>

#include "ane/bpe_tokenizer.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"

namespace ane {

namespace {

constexpr std::string_view kMarker = "\xE2\x96\x81";  // '▁'

bool parse_byte_piece(const std::string& p, unsigned& byte) {
    if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return false;
    auto hex = [](char ch) -> int {
        if (ch >= '0' && ch <= '9') return ch - '0';
        if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
        return -1;
    };
    const int hi = hex(p[3]), lo = hex(p[4]);
    if (hi < 0 || lo < 0) return false;  // sscanf's %x would take "-9" and give 4294967287
    byte = unsigned(hi * 16 + lo);
    return true;
}

class ScoreTokenizer final : public Tokenizer {
public:
    ScoreTokenizer(ScoreVocabulary v, std::string origin) : v_(std::move(v)), origin_(std::move(origin)) {
        space_ = v_.space_marker ? std::string(kMarker) : std::string(" ");
        std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
        for (int id = 0; id < int(v_.pieces.size()); ++id) {
            unsigned b = 0;
            if (v_.kinds[std::size_t(id)] == TokenKind::Byte && parse_byte_piece(v_.pieces[std::size_t(id)], b)) {
                byte_ids_[b] = id;
                continue;
            }
            if (v_.kinds[std::size_t(id)] == TokenKind::Normal) index_.emplace(v_.pieces[std::size_t(id)], id);
        }
        // Every pair of ids whose texts join into a piece, so that merging looks up two ids
        // instead of building and hashing a string.
        std::unordered_map<std::string, std::vector<int>> ids_of_text;
        for (int id = 0; id < int(v_.pieces.size()); ++id) ids_of_text[v_.pieces[std::size_t(id)]].push_back(id);
        for (const auto& [text, merged] : index_)
            for (std::size_t k = 1; k < text.size(); ++k) {
                const auto l = ids_of_text.find(text.substr(0, k)), r = ids_of_text.find(text.substr(k));
                if (l == ids_of_text.end() || r == ids_of_text.end()) continue;
                for (int a : l->second)
                    for (int b : r->second) pair_merge_.emplace(pair_key(a, b), merged);
            }
        // When no piece has a space after another character, no merge crosses the start of a
        // word: words are merged on their own, each distinct word once.
        words_ = true;
        for (const auto& [text, id] : index_)
            for (std::size_t at = text.find(space_, 1); at != std::string::npos && words_; at = text.find(space_, at + 1))
                if (at < space_.size() || text.compare(at - space_.size(), space_.size(), space_) != 0) words_ = false;
    }

    int vocab_size() const override { return int(v_.pieces.size()); }

    std::vector<int> encode(std::string_view text) const override {
        std::string s;
        const std::string& space = space_;
        if (v_.add_dummy_prefix && !text.empty()) s += space;
        for (char ch : text) s += ch == ' ' ? space : std::string(1, ch);
        if (!words_) return encode_symbols(s);
        std::vector<int> ids;
        std::unordered_map<std::string_view, std::vector<int>> cache;
        const std::string_view all(s);
        for (std::size_t start = 0; start < all.size();) {
            // A word: spaces, then everything up to the next space after a non-space.
            std::size_t end = start;
            while (end < all.size() && all.compare(end, space.size(), space) == 0) end += space.size();
            while (end < all.size() && all.compare(end, space.size(), space) != 0) ++end;
            auto [it, fresh] = cache.try_emplace(all.substr(start, end - start));
            if (fresh) it->second = encode_symbols(std::string(it->first));
            ids.insert(ids.end(), it->second.begin(), it->second.end());
            start = end;
        }
        return ids;
    }

    // One symbol per UTF-8 character, or its bytes when the character is not a piece; then merged.
    std::vector<int> encode_symbols(const std::string& s) const {
        std::vector<int> ids;
        for (std::size_t i = 0; i < s.size();) {
            std::size_t len = 1;
            const auto c = static_cast<unsigned char>(s[i]);
            if (c >= 0xF0) len = 4;
            else if (c >= 0xE0) len = 3;
            else if (c >= 0xC0) len = 2;
            len = std::min(len, s.size() - i);
            const auto it = index_.find(s.substr(i, len));
            if (it != index_.end()) {
                ids.push_back(it->second);
            } else {
                for (std::size_t k = 0; k < len; ++k) {
                    const int b = byte_ids_[static_cast<unsigned char>(s[i + k])];
                    ids.push_back(b >= 0 ? b : unknown_id());
                }
            }
            i += len;
        }
        return merge_pairs(ids);
    }

    // Merges the best-scoring adjacent pair (the leftmost of equals) until no pair is in the
    // vocabulary, as llama2.c does by rescanning, but with a queue of candidate pairs over a
    // linked list: O(n log n) instead of O(n^2), so that a whole book is one document.
    std::vector<int> merge_pairs(const std::vector<int>& start) const {
        const int n = int(start.size());
        std::vector<int> id(start), prev(start.size()), next(start.size());
        for (int i = 0; i < n; ++i) {
            prev[std::size_t(i)] = i - 1;
            next[std::size_t(i)] = i + 1 < n ? i + 1 : -1;
        }
        struct Candidate {
            float score;
            int left, right, left_id, right_id, merged;
            bool operator<(const Candidate& o) const { return score < o.score || (score == o.score && left > o.left); }
        };
        std::priority_queue<Candidate> queue;
        auto consider = [&](int left) {
            if (left < 0) return;
            const int right = next[std::size_t(left)];
            if (right < 0) return;
            const auto it = pair_merge_.find(pair_key(id[std::size_t(left)], id[std::size_t(right)]));
            if (it == pair_merge_.end()) return;
            queue.push({v_.scores[std::size_t(it->second)], left, right, id[std::size_t(left)], id[std::size_t(right)],
                        it->second});
        };
        for (int i = 0; i + 1 < n; ++i) consider(i);
        std::vector<char> alive(std::size_t(n), 1);
        while (!queue.empty()) {
            const Candidate c = queue.top();
            queue.pop();
            const auto l = std::size_t(c.left), r = std::size_t(c.right);
            if (!alive[l] || !alive[r] || next[l] != c.right || id[l] != c.left_id || id[r] != c.right_id) continue;
            id[l] = c.merged;
            alive[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) prev[std::size_t(next[r])] = c.left;
            consider(prev[l]);
            consider(c.left);
        }
        std::vector<int> out;
        for (int i = 0; i < n; ++i)
            if (alive[std::size_t(i)]) out.push_back(id[std::size_t(i)]);
        return out;
    }

    std::string decode(std::span<const int> ids) const override {
        std::string out;
        int prev = -1;
        for (int id : ids) {
            require(id >= 0 && id < vocab_size(), origin_, ": cannot decode id ", id);
            out += token_text(prev, id);
            prev = id;
        }
        if (v_.add_dummy_prefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
        return out;
    }

    std::string piece(int id) const override {
        // Report pieces with '▁' like SentencePiece, whatever the storage convention.
        std::string p = v_.pieces[std::size_t(id)];
        if (!v_.space_marker) {
            std::string q;
            for (char ch : p) q += ch == ' ' ? std::string(kMarker) : std::string(1, ch);
            return q;
        }
        return p;
    }
    TokenKind kind(int id) const override { return v_.kinds[std::size_t(id)]; }
    float score(int id) const override { return v_.scores[std::size_t(id)]; }
    bool adds_space_prefix() const override { return v_.add_dummy_prefix; }
    int bos_id() const override { return v_.bos; }
    int eos_id() const override { return v_.eos; }
    std::string describe() const override {
        return "score-merge vocabulary from " + origin_ + ", " + std::to_string(vocab_size()) + " tokens";
    }

    // The text of one token as it follows `prev` in a stream (byte tokens become bytes; control
    // tokens print nothing; the space after BOS is dropped, as SentencePiece does).
    std::string token_text(int prev, int id) const override {
        if (id < 0 || id >= vocab_size()) return "";  // an embedding row past the vocabulary (padding)
        const TokenKind k = v_.kinds[std::size_t(id)];
        if (k == TokenKind::Control || k == TokenKind::Unused) return "";
        unsigned b = 0;
        if (k == TokenKind::Byte && parse_byte_piece(v_.pieces[std::size_t(id)], b)) return std::string(1, char(b));
        std::string t = text_of(id);
        std::string out;
        for (std::size_t i = 0; i < t.size();) {
            if (t.compare(i, kMarker.size(), kMarker) == 0) {
                out += ' ';
                i += kMarker.size();
            } else {
                out += t[i++];
            }
        }
        if (prev == v_.bos && !out.empty() && out[0] == ' ') out.erase(0, 1);
        return out;
    }

private:
    const std::string& text_of(int id) const { return v_.pieces[std::size_t(id)]; }
    int unknown_id() const {
        for (int id = 0; id < vocab_size(); ++id)
            if (v_.kinds[std::size_t(id)] == TokenKind::Unknown) return id;
        return 0;
    }
    ScoreVocabulary v_;
    std::string origin_;
    std::unordered_map<std::string, int> index_;
    std::unordered_map<std::uint64_t, int> pair_merge_;
    std::string space_;  // how the pieces spell a space: '▁', or ' ' (llama2.c)
    bool words_ = false;
    int byte_ids_[256] = {};
    static std::uint64_t pair_key(int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }
    friend std::unique_ptr<Tokenizer> make_score_tokenizer(ScoreVocabulary, std::string);
};

}  // namespace

std::unique_ptr<Tokenizer> make_score_tokenizer(ScoreVocabulary vocab, std::string origin) {
    require(!vocab.pieces.empty() && vocab.scores.size() == vocab.pieces.size() &&
                vocab.kinds.size() == vocab.pieces.size(),
            origin, ": inconsistent vocabulary");
    auto t = std::make_unique<ScoreTokenizer>(std::move(vocab), std::move(origin));
    return t;
}

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& f) {
    const GgufValue* model = f.find("tokenizer.ggml.model");
    require(model && model->type == GgufValueType::STRING, f.path(), ": no tokenizer.ggml.model (no vocabulary)");
    if (model->s == "gpt2") return bpe_tokenizer_from_gguf(f);
    require(model->s == "llama", f.path(), ": tokenizer model '", model->s,
            "' is not supported (SentencePiece 'llama' and byte-level BPE 'gpt2' vocabularies)");
    const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
    require(tokens && tokens->type == GgufValueType::ARRAY && tokens->elem_type == GgufValueType::STRING, f.path(),
            ": no tokenizer.ggml.tokens");
    ScoreVocabulary v;
    const std::size_t n = tokens->array.size();
    for (const auto& t : tokens->array) v.pieces.push_back(t.s);
    v.scores.assign(n, 0.0f);
    v.kinds.assign(n, TokenKind::Normal);
    if (const GgufValue* s = f.find("tokenizer.ggml.scores"); s && s->array.size() == n)
        for (std::size_t i = 0; i < n; ++i) v.scores[i] = float(s->array[i].as_double());
    if (const GgufValue* ty = f.find("tokenizer.ggml.token_type"); ty && ty->array.size() == n)
        for (std::size_t i = 0; i < n; ++i) {
            switch (gguf_token_type(ty->array[i])) {
                case kGgufUnknown: v.kinds[i] = TokenKind::Unknown; break;
                case kGgufControl: v.kinds[i] = TokenKind::Control; break;
                case kGgufUnused: v.kinds[i] = TokenKind::Unused; break;
                case kGgufByte: v.kinds[i] = TokenKind::Byte; break;
                default: v.kinds[i] = TokenKind::Normal; break;
            }
        }
    v.bos = gguf_token_id(f, "tokenizer.ggml.bos_token_id", n);
    v.eos = gguf_token_id(f, "tokenizer.ggml.eos_token_id", n);
    if (const GgufValue* p = f.find("tokenizer.ggml.add_space_prefix")) v.add_dummy_prefix = p->u != 0;
    return make_score_tokenizer(std::move(v), f.path());
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int vocab_size) {
    const MappedFile file(path);
    ByteReader r(file.bytes(), path);
    const auto max_len = r.get<std::int32_t>("max token length");
    require(max_len > 0 && max_len < 4096, path, ": not a llama2.c tokenizer (max token length ", max_len, ")");
    ScoreVocabulary v;
    v.space_marker = false;
    const bool to_end = vocab_size <= 0;
    for (int i = 0; to_end ? r.remaining() > 0 : i < vocab_size; ++i) {
        v.scores.push_back(r.get<float>("token score"));
        const auto len = r.get<std::int32_t>("token length");
        require(len >= 0 && len <= max_len, path, ": token ", i, " has length ", len);
        const auto* p = reinterpret_cast<const char*>(r.take(std::size_t(len), "token bytes"));
        v.pieces.emplace_back(p, std::size_t(len));
    }
    require(r.remaining() == 0, path, ": ", r.remaining(), " bytes after ", vocab_size,
            " tokens: the vocabulary does not match the model's");
    vocab_size = int(v.pieces.size());
    v.kinds.assign(v.pieces.size(), TokenKind::Normal);
    for (int i = 0; i < vocab_size; ++i) {
        unsigned b = 0;
        if (parse_byte_piece(v.pieces[std::size_t(i)], b)) v.kinds[std::size_t(i)] = TokenKind::Byte;
    }
    // llama2.c's exports: 0 <unk>, 1 BOS ("\n<s>\n"), 2 EOS ("\n</s>\n").
    if (vocab_size > 2) {
        v.kinds[0] = TokenKind::Unknown;
        v.kinds[1] = v.kinds[2] = TokenKind::Control;
        v.bos = 1;
        v.eos = 2;
    }
    return make_score_tokenizer(std::move(v), path);
}

}  // namespace ane
