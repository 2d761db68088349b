// `ane-convert tokens`: text files to a token file with a SentencePiece model.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "ane/cli.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/log.hpp"
#include "ane/token_file.hpp"
#include "ane/tokenizer.hpp"
#include "ane/vocab_map.hpp"
#include "ane/file_checks.hpp"
#include "commands.hpp"
#include "outputs.hpp"

namespace ane::convert {

void add_tokens_command(CLI::App& app, TokensOptions& o) {
    auto* cmd = app.add_subcommand("tokens", "tokenize text files into a token file");
    cmd->add_option("inputs", o.inputs, "text files (UTF-8; '-' reads stdin; pipes work); each one is a document")->required();
    cmd->add_option("-t,--tokenizer", o.tokenizer,
                    "SentencePiece .model, llama2.c tokenizer.bin, a GGUF with a vocabulary or a Hugging Face tokenizer.json")
        ->required();
    cmd->add_option("-o,--output", o.output, "token file to write (default for one input: beside it, corpus.txt -> corpus.bin)");
    cmd->add_option("--format", o.format,
                    "raw (bare uint16), shard (256 x int32 header, magic 20240520, uint16) or shard32 (llm.c's "
                    "magic 20240801, uint32 ids); default raw, shard32 for vocabularies past 65536")
        ->check(CLI::IsMember({"raw", "shard", "shard32"}));
    cmd->add_option("--val-fraction", o.val_fraction,
                    "also write the last fraction F of the tokens to a validation file")
        ->check(ane::range::between(0, 0.5));
    cmd->add_option("--val-output", o.val_output, "validation file (default: OUTPUT with .val before its extension)");
    cmd->add_flag("--bos,!--no-bos", o.bos, "start every document with the tokenizer's BOS id (default on)");
    cmd->add_flag("-f,--force", o.force, "overwrite existing output files");
}

namespace {

std::string default_val_path(const std::string& output) {
    std::filesystem::path p(output);
    std::filesystem::path out = p.parent_path() / (p.stem().string() + ".val" + p.extension().string());
    return out.string();
}

}  // namespace

int run_tokens(const TokensOptions& opts) {
    TokensOptions o = opts;
    TokenFormat format = o.format.empty() ? TokenFormat::Raw : parse_token_format(o.format);
    const bool split = o.val_fraction > 0.0;
    require_usage(split || o.val_output.empty(), "--val-output needs --val-fraction");
    require_usage(!o.output.empty() || o.inputs.size() == 1, "give -o/--output: there are ", o.inputs.size(),
                  " input files");
    o.output = resolve_output(o.inputs.front(), o.output, ".bin");
    const std::string val_path = split ? (o.val_output.empty() ? default_val_path(o.output) : o.val_output) : "";
    FileChecks files(o.force);
    for (const auto& in : o.inputs) files.input(in, "input " + in);
    files.input(o.tokenizer, "--tokenizer");
    files.output(o.output, "-o/--output");
    if (split) files.output(val_path, "--val-output");
    announce_output(opts.output, o.output);

    auto tok = load_tokenizer(o.tokenizer);
    if (std::uint64_t(tok->vocab_size()) - 1 > max_token_id(format)) {
        require_usage(o.format.empty(), "--format ", o.format, " stores ids up to ", max_token_id(format), "; ",
                      o.tokenizer, " has ", tok->vocab_size(), " tokens: use --format shard32");
        format = TokenFormat::Shard32;
    }
    const ByteCounter counter(*tok);

    std::vector<std::uint32_t> ids;
    std::int64_t text_bytes = 0, counted_bytes = 0, text_tokens = 0;
    double encode_seconds = 0;
    for (const auto& path : o.inputs) {
        const std::string text = read_text_file(path);
        log::info("tokenizing ", path, " (", text.size(), " bytes)");
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<int> doc = tok->encode(text);
        encode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        int prev = -1;
        if (o.bos && tok->bos_id() >= 0) {
            ids.push_back(std::uint32_t(tok->bos_id()));
            prev = tok->bos_id();
        }
        for (int id : doc) ids.push_back(std::uint32_t(id));
        text_bytes += std::int64_t(text.size());
        counted_bytes += counter.count(doc, prev);
        text_tokens += std::int64_t(doc.size());
    }
    require(!ids.empty(), "the input files hold no text");

    const TokenSpan all(ids);
    std::size_t n_train = all.size();
    if (split) {
        n_train = split_train_val(all.size(), 1.0 - o.val_fraction).train_tokens;
        require(n_train > 0 && n_train < all.size(), "--val-fraction ", o.val_fraction, " leaves an empty split of ",
                all.size(), " tokens");
    }
    const VocabMap map = VocabMap::build(all, tok->vocab_size());
    write_token_file(o.output, all.first(n_train), format);
    if (split) write_token_file(val_path, all.subspan(n_train), format);

    if (log::level() < log::Level::Info) return 0;
    std::printf("wrote %s: %zu tokens (%s)\n", o.output.c_str(), n_train, token_format_name(format));
    if (split) std::printf("wrote %s: %zu tokens (%s)\n", val_path.c_str(), all.size() - n_train, token_format_name(format));
    std::printf("tokenizer: %s (%s)\n", o.tokenizer.c_str(), tok->describe().c_str());
    std::printf("vocabulary: %d ids, %d present in the data\n", tok->vocab_size(), map.compact_vocab());
    std::printf("text: %lld bytes in %zu file(s), %lld tokens; %.3f bytes per token (%lld bytes by the bits-per-byte rule)\n",
                static_cast<long long>(text_bytes), o.inputs.size(), static_cast<long long>(text_tokens),
                text_tokens ? double(text_bytes) / double(text_tokens) : 0.0, static_cast<long long>(counted_bytes));
    std::printf("speed: %.1f MB/s encoding (%.3f s, up to %d threads)\n",
                encode_seconds > 0 ? double(text_bytes) / 1e6 / encode_seconds : 0.0, encode_seconds,
                omp_get_max_threads());
    return 0;
}

}  // namespace ane::convert
