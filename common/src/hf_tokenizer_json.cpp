// Hugging Face's tokenizer.json (and the eos token of tokenizer_config.json) to a BpeVocabulary.
// What the file asks for and the suite cannot run is refused by name, never approximated.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ane/bpe_tokenizer.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/json_fields.hpp"

namespace ane {

namespace {

using nlohmann::json;

std::string type_of(const json& j) { return j.is_object() && j.contains("type") ? j["type"].get<std::string>() : "?"; }

// The steps of a normalizer, pre-tokenizer or decoder, Sequence flattened.
std::vector<json> steps(const json& j, const char* list_key) {
    if (j.is_null()) return {};
    if (type_of(j) != "Sequence") return {j};
    std::vector<json> out;
    for (const auto& s : j.at(list_key)) {
        auto inner = steps(s, list_key);
        out.insert(out.end(), inner.begin(), inner.end());
    }
    return out;
}

// Replace {"String": from} -> to, as the SentencePiece-converted files spell a space.
bool is_replace(const json& step, const std::string& from, std::string* to = nullptr) {
    if (type_of(step) != "Replace" || !step.contains("pattern") || !step["pattern"].contains("String")) return false;
    if (step["pattern"]["String"].get<std::string>() != from) return false;
    if (to) *to = step.at("content").get<std::string>();
    return true;
}

void read_normalizer(const json& n, BpeVocabulary& v, const std::string& origin) {
    std::string prepend;
    for (const auto& step : steps(n, "normalizers")) {
        const std::string t = type_of(step);
        if (t == "NFC") v.nfc = true;
        else if (t == "Prepend") prepend = step.at("prepend").get<std::string>();
        else if (is_replace(step, " ", &v.metaspace)) continue;
        else throw error(origin, ": normalizer ", t, " is not supported (NFC, and Prepend and Replace of a space)");
    }
    require(prepend.empty() || prepend == v.metaspace, origin, ": a Prepend normalizer of \"", prepend,
            "\" without a Replace of spaces by it is not supported");
    require(v.metaspace != " ", origin, ": a Replace of a space by a space");
    if (!prepend.empty()) v.prepend = BpeVocabulary::Prepend::normalizer;
}

BpeVocabulary::Prepend prepend_scheme(const json& step, const std::string& origin) {
    using P = BpeVocabulary::Prepend;
    if (!step.contains("prepend_scheme")) return step.value("add_prefix_space", true) ? P::always : P::never;
    const std::string scheme = step["prepend_scheme"].get<std::string>();
    if (scheme == "always") return P::always;
    if (scheme == "first") return P::first;
    if (scheme == "never") return P::never;
    throw error(origin, ": Metaspace prepend_scheme '", scheme, "' is not supported");
}

void read_pre_tokenizer(const json& p, BpeVocabulary& v, const std::string& origin) {
    bool byte_level = false, metaspace = false;
    for (const auto& step : steps(p, "pretokenizers")) {
        const std::string t = type_of(step);
        if (t == "Split") {
            const std::string behavior = step.value("behavior", "Isolated");
            require(behavior == "Isolated" && !step.value("invert", false), origin, ": Split pre-tokenizer with behavior ",
                    behavior, step.value("invert", false) ? " inverted" : "", " is not supported (only Isolated)");
            const json& pattern = step.at("pattern");
            require(pattern.contains("Regex"), origin, ": Split pre-tokenizer by a string is not supported");
            v.split_patterns.push_back(pattern["Regex"].get<std::string>());
        } else if (t == "Digits") {
            v.split_patterns.push_back(step.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
        } else if (t == "ByteLevel") {
            byte_level = true;
            v.add_prefix_space = step.value("add_prefix_space", false);
            if (step.value("use_regex", true)) v.split_patterns.push_back(kGpt2SplitPattern);
        } else if (t == "Metaspace") {
            metaspace = true;
            v.metaspace = step.value("replacement", std::string("\u2581"));
            require(!v.metaspace.empty() && v.metaspace != " ", origin, ": Metaspace replacement '", v.metaspace, "'");
            v.prepend = prepend_scheme(step, origin);
            v.metaspace_split = step.value("split", true);
        } else {
            throw error(origin, ": pre-tokenizer ", t, " is not supported (Split, Digits, ByteLevel, Metaspace)");
        }
    }
    require(!(byte_level && !v.metaspace.empty()), origin, ": ByteLevel and Metaspace together are not supported");
    require(!metaspace || v.split_patterns.empty(), origin, ": Split or Digits before Metaspace is not supported");
    require(byte_level || !v.metaspace.empty(), origin, ": a BPE model with neither a ByteLevel nor a Metaspace pre-tokenizer (",
            p.is_null() ? "none" : type_of(p), ") is not supported");
}

// What a decoder may do: ByteLevel for byte-level files; for Metaspace ones ▁ back to a space,
// byte tokens to bytes, and the prefix space dropped.
void read_decoder(const json& d, BpeVocabulary& v, const std::string& origin) {
    for (const auto& step : steps(d, "decoders")) {
        const std::string t = type_of(step);
        if (v.byte_level()) {
            require(t == "ByteLevel", origin, ": decoder ", t, " is not supported with a ByteLevel pre-tokenizer");
        } else if (t == "Strip") {
            require(step.value("content", std::string(" ")) == " " && step.value("stop", 0) == 0, origin,
                    ": a Strip decoder other than of leading spaces is not supported");
            if (step.value("start", 0) >= 1) v.prefix_strip = BpeVocabulary::PrefixStrip::leading_space;
        } else if (t == "Metaspace") {
            if (prepend_scheme(step, origin) != BpeVocabulary::Prepend::never)
                v.prefix_strip = BpeVocabulary::PrefixStrip::first_token;
        } else if (t == "ByteFallback") {
            v.decode_byte_tokens = true;
        } else if (t != "Fuse" && !is_replace(step, v.metaspace)) {
            throw error(origin, ": decoder ", t, " is not supported with Metaspace (Replace, ByteFallback, Fuse, Strip)");
        }
    }
}

// The first special token of the post-processor's single-sequence template: the BOS it adds.
std::string template_bos(const json& post) {
    for (const auto& step : steps(post, "processors")) {
        if (type_of(step) != "TemplateProcessing" || !step.contains("single")) continue;
        const json& first = step["single"].at(0);
        if (first.contains("SpecialToken")) return first["SpecialToken"].at("id").get<std::string>();
    }
    return "";
}

std::string token_content(const json& t) {
    if (t.is_string()) return t.get<std::string>();
    if (t.is_object() && t.contains("content")) return t["content"].get<std::string>();
    return "";
}

}  // namespace

std::unique_ptr<Tokenizer> hf_tokenizer_from_json(const std::string& text, const std::string& config_text,
                                                  const std::string& origin) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw error(origin, ": not valid JSON: ", e.what());
    }
    try {
        require(j.is_object() && j.contains("model"), origin, ": no \"model\": not a Hugging Face tokenizer.json");
        const json& model = j["model"];
        const std::string kind = type_of(model);
        require(kind == "BPE", origin, ": tokenizer model ", kind, " is not supported (BPE only)");
        const auto none = [&](const char* key) {
            const json& v = model.value(key, json());
            return v.is_null() || (v.is_string() && v.get<std::string>().empty());
        };
        require(none("continuing_subword_prefix") && none("end_of_word_suffix"), origin,
                ": BPE with subword prefixes or word suffixes is not supported");
        BpeVocabulary v;
        int size = 0;
        constexpr int kMaxId = (1 << 24) - 1;
        const auto id_of_entry = [&](const json& v, const std::string& what) { return json_int(v, origin, what, 0, kMaxId); };
        for (const auto& [piece, id] : model.at("vocab").items()) size = std::max(size, id_of_entry(id, "vocab id") + 1);
        for (const auto& t : j.value("added_tokens", json::array()))
            size = std::max(size, id_of_entry(t.at("id"), "added token id") + 1);
        require(size > 0 && size <= (1 << 24), origin, ": a vocabulary of ", size, " tokens");
        v.pieces.assign(std::size_t(size), "");
        v.kinds.assign(std::size_t(size), TokenKind::Unused);
        for (const auto& [piece, id] : model.at("vocab").items()) {
            const int i = id_of_entry(id, "vocab id");
            v.pieces[std::size_t(i)] = piece;
            v.kinds[std::size_t(i)] = TokenKind::Normal;
        }
        for (const auto& m : model.at("merges")) {
            if (m.is_string()) {  // "a b" (older files); pieces never contain a plain space
                const std::string s = m.get<std::string>();
                const auto space = s.find(' ', 1);
                require(space != std::string::npos, origin, ": merge \"", s, "\" is not two tokens");
                v.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
            } else {
                v.merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
            }
        }
        v.ignore_merges = model.value("ignore_merges", false);
        v.byte_fallback = model.value("byte_fallback", false);
        v.fuse_unk = model.value("fuse_unk", false);
        for (const auto& t : j.value("added_tokens", json::array())) {
            AddedToken a;
            a.content = t.at("content").get<std::string>();
            a.id = id_of_entry(t.at("id"), "added token id");
            a.special = t.value("special", false);
            a.lstrip = t.value("lstrip", false);
            a.rstrip = t.value("rstrip", false);
            require(a.id >= 0 && !a.content.empty(), origin, ": added token ", a.content, " with id ", a.id);
            v.pieces[std::size_t(a.id)] = a.content;
            v.kinds[std::size_t(a.id)] = a.special ? TokenKind::Control : TokenKind::Normal;
            v.added.push_back(a);
        }
        read_normalizer(j.value("normalizer", json()), v, origin);
        read_pre_tokenizer(j.value("pre_tokenizer", json()), v, origin);
        read_decoder(j.value("decoder", json()), v, origin);
        const auto id_of = [&](const std::string& content) {
            for (const auto& a : v.added)
                if (a.content == content) return a.id;
            const json& vocab = model.at("vocab");
            return vocab.contains(content) ? id_of_entry(vocab[content], "vocab id") : -1;
        };
        if (model.value("unk_token", json()).is_string()) v.unk = id_of(model["unk_token"].get<std::string>());
        v.bos = id_of(template_bos(j.value("post_processor", json())));
        if (!config_text.empty()) {
            const json config = json::parse(config_text);
            v.eos = id_of(token_content(config.value("eos_token", json())));
            if (v.bos < 0 && config.value("add_bos_token", false)) v.bos = id_of(token_content(config.value("bos_token", json())));
        }
        if (v.eos < 0) v.eos = id_of("<|endoftext|>");
        return make_bpe_tokenizer(std::move(v), origin);
    } catch (const json::exception& e) {
        throw error(origin, ": unexpected tokenizer.json content: ", e.what());
    }
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
    const auto config = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    std::string config_text;
    if (std::filesystem::exists(config)) config_text = read_text_file(config.string());
    return hf_tokenizer_from_json(read_text_file(path), config_text, path);
}

}  // namespace ane
