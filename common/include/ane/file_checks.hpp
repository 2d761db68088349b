#pragma once
// What a tool checks about its files before any long work starts, so that a run never ends
// in a failed save: every output can be created, overwrites nothing without --force, and is
// neither an input nor another output; standard input is read by one input at most.
#include <string>
#include <vector>

namespace ane {

class FileChecks {
public:
    explicit FileChecks(bool force) : force_(force) {}

    // An input file (or "-" for standard input). `what` names it in messages ("--data").
    void input(const std::string& path, const std::string& what);
    // An output file: its directory exists and accepts a new file (a probe is created and
    // removed there), it is not a directory, not an input nor another output, and it does
    // not exist yet unless --force was given or `may_exist` (a companion the run owns, such
    // as the best checkpoint of the run being resumed in place). A temporary of this output
    // left by a killed run (temporary_path) is removed.
    void output(const std::string& path, const std::string& what, bool may_exist = false);
    // An output directory (export-hf): created when absent, probed like a file's directory;
    // `files` are the outputs that will go in it.
    void output_directory(const std::string& dir, const std::vector<std::string>& files, const std::string& what);

private:
    struct Entry {
        std::string path, what, identity;
        bool output;
    };
    void add(const std::string& path, const std::string& what, bool output);
    bool force_;
    std::vector<Entry> entries_;
};

// Whether two names denote one file (the same inode, or the same resolved path).
bool same_file(const std::string& a, const std::string& b);

// Throws unless a new file can be created in `dir` (probing with a file created and removed).
void check_directory_writable(const std::string& dir, const std::string& for_path);

}  // namespace ane
