#include "ane/file_checks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ane/error.hpp"
#include "ane/file_io.hpp"

namespace fs = std::filesystem;

namespace ane {

namespace {

// Two names of one file compare equal: the device and inode when it exists, else the
// absolute path with every existing part resolved.
std::string identity(const std::string& path) {
    if (is_stdin_path(path)) return "<stdin>";
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return "inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
    return "path:" + (ec ? path : p.string());
}

std::string directory_of(const std::string& path) {
    const std::string dir = fs::path(path).parent_path().string();
    return dir.empty() ? "." : dir;
}

}  // namespace

bool same_file(const std::string& a, const std::string& b) { return identity(a) == identity(b); }

void check_directory_writable(const std::string& dir, const std::string& for_path) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        throw error(for_path, ": cannot be written: the directory ", dir, " does not exist");
    if (!S_ISDIR(st.st_mode)) throw error(for_path, ": cannot be written: ", dir, " is not a directory");
    std::string probe = (fs::path(dir) / ".ane-probe-XXXXXX").string();
    const int fd = ::mkstemp(probe.data());
    if (fd < 0)
        throw error(for_path, ": cannot be written: cannot create a file in ", dir, ": ", std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
}

void FileChecks::add(const std::string& path, const std::string& what, bool output) {
    Entry e{path, what, identity(path), output};
    for (const Entry& other : entries_) {
        if (other.identity != e.identity) continue;
        if (!output && !other.output) {
            require_usage(!is_stdin_path(path), what, " and ", other.what,
                          " both read standard input ('-'); it can be read once");
            continue;  // the same input twice is harmless
        }
        throw usage_error(what, " ", display_path(path), " is also ", other.what, (other.output ? " (an output)" : " (an input)"),
                          "; give another name");
    }
    entries_.push_back(std::move(e));
}

void FileChecks::input(const std::string& path, const std::string& what) {
    if (path.empty()) return;
    add(path, what, false);
}

void FileChecks::output(const std::string& path, const std::string& what, bool may_exist) {
    if (path.empty()) return;
    require_usage(!is_stdin_path(path), what, ": '-' is not an output; give a file name");
    struct stat st {};
    const bool exists = ::stat(path.c_str(), &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) throw error(path, ": is a directory (", what, " names a file to write)");
    add(path, what, true);
    if (exists && !force_ && !may_exist) throw error(path, ": already exists (use --force to overwrite)");
    check_directory_writable(directory_of(path), path);
    ::unlink(temporary_path(path).c_str());  // ours by name: a save cut short by a killed run
}

void FileChecks::output_directory(const std::string& dir, const std::vector<std::string>& files, const std::string& what) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) throw error(dir, ": exists and is not a directory (", what, " names a folder)");
    } else {
        check_directory_writable(directory_of(dir), dir);
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) throw error(dir, ": cannot create the directory: ", ec.message());
    }
    for (const auto& f : files) output((fs::path(dir) / f).string(), what + " " + f);
}

}  // namespace ane
