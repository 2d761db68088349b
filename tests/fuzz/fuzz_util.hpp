#pragma once
// What the fuzz targets share: the input as a file (readers take paths), and the rule that a
// reader either succeeds or throws ane::Error with a message; anything else is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "ane/error.hpp"

namespace ane::fuzz {

// The bytes as an anonymous in-memory file, named through /proc so that readers map it.
class InputFile {
public:
    InputFile(const std::uint8_t* data, std::size_t size) {
        fd_ = ::memfd_create("fuzz-input", MFD_CLOEXEC);
        if (fd_ < 0) std::abort();
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::write(fd_, data + done, size - done);
            if (n <= 0) std::abort();
            done += std::size_t(n);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~InputFile() { ::close(fd_); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;
    const std::string& path() const { return path_; }

private:
    int fd_ = -1;
    std::string path_;
};

// Runs a reader: an ane::Error is the clean refusal every bad file must get; any other
// exception escaping a reader would reach the user without naming the file.
template <typename F>
void expect_clean(F&& reader) {
    try {
        reader();
    } catch (const ane::Error& e) {
        if (std::string(e.what()).empty()) std::abort();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "finding: a %s escaped the reader: %s\n", typeid(e).name(), e.what());
        std::abort();
    }
}

// ../shared/data (ANE_SHARED_DATA overrides), for targets that need a real tokenizer.
inline std::string shared_data(const std::string& relative) {
    const char* env = std::getenv("ANE_SHARED_DATA");
    return std::string(env ? env : ANE_FUZZ_SHARED_DATA) + "/" + relative;
}

}  // namespace ane::fuzz
