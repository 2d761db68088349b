#pragma once
// Vocabulary compaction (spec/data.md §4): the ids present in the data, ranked by ascending
// id, become compact ids 0..CV-1; losses are normalised over those CV classes.
#include <cstdint>
#include <span>
#include <vector>

#include "ane/token_file.hpp"

namespace ane {

class VocabMap {
public:
    VocabMap() = default;
    static VocabMap build(TokenSpan tokens, int vocab);
    // The ids present in any of several token streams (a training and a validation file).
    static VocabMap build(const std::vector<TokenSpan>& streams, int vocab);
    static VocabMap identity(int vocab);

    int full_vocab() const { return int(full_to_compact_.size()); }
    int compact_vocab() const { return int(compact_to_full_.size()); }
    int to_compact(int full_id) const { return full_to_compact_[full_id]; }  // -1 when absent
    int to_full(int compact_id) const { return compact_to_full_[compact_id]; }
    const std::vector<std::int32_t>& compact_to_full() const { return compact_to_full_; }
    const std::vector<std::int32_t>& full_to_compact() const { return full_to_compact_; }

private:
    std::vector<std::int32_t> full_to_compact_, compact_to_full_;
};

}  // namespace ane
