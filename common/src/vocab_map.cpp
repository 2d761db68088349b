#include "ane/vocab_map.hpp"

#include "ane/error.hpp"

namespace ane {

VocabMap VocabMap::build(TokenSpan tokens, int vocab) {
    return build(std::vector<TokenSpan>{tokens}, vocab);
}

VocabMap VocabMap::build(const std::vector<TokenSpan>& streams, int vocab) {
    std::vector<std::uint8_t> present(static_cast<std::size_t>(vocab), 0);
    for (const auto& tokens : streams)
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            require(tokens[i] < std::uint32_t(vocab), "token ", i, " has id ", tokens[i], ", outside the vocabulary of ", vocab);
            present[tokens[i]] = 1;
        }
    VocabMap m;
    m.full_to_compact_.assign(static_cast<std::size_t>(vocab), -1);
    for (int v = 0; v < vocab; ++v) {
        if (!present[v]) continue;
        m.full_to_compact_[v] = static_cast<std::int32_t>(m.compact_to_full_.size());
        m.compact_to_full_.push_back(v);
    }
    return m;
}

VocabMap VocabMap::identity(int vocab) {
    VocabMap m;
    for (int v = 0; v < vocab; ++v) {
        m.full_to_compact_.push_back(v);
        m.compact_to_full_.push_back(v);
    }
    return m;
}

}  // namespace ane
