#pragma once
// Reading files through read-only memory maps, and writing them atomically
// (name.ane-tmp, fsync, rename) so that a failed write never damages what is on disk.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ane {

// A regular file is mapped; "-" (stdin), a pipe, a FIFO or a process substitution
// (/dev/fd/N) cannot be, so it is read into memory once and kept for the process: opening
// the same stream again (a format sniffed, then read) sees the same bytes.
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::string& path() const { return path_; }
    std::size_t size() const { return size_; }
    const std::uint8_t* data() const { return data_; }
    std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
    // Drops the whole pages of [p, p + n) from memory once their contents have been copied
    // out, so that converting a model holds one copy of it, not the file's pages as well.
    void release(const void* p, std::size_t n) const;

private:
    std::string path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    std::shared_ptr<const std::vector<std::uint8_t>> stream_;  // set when read, not mapped
};

// "-" names standard input; messages call it "<stdin>".
bool is_stdin_path(const std::string& path);
std::string display_path(const std::string& path);

// Bounds-checked little-endian reads from a byte span; errors name the file.
class ByteReader {
public:
    ByteReader(std::span<const std::uint8_t> bytes, std::string path, std::size_t offset = 0)
        : bytes_(bytes), path_(std::move(path)), pos_(offset) {}

    std::size_t pos() const { return pos_; }
    std::size_t remaining() const { return bytes_.size() - pos_; }
    void seek(std::size_t pos);
    void skip(std::size_t n) { seek(checked_end(n)); }
    // Returns a pointer to the next n bytes and advances past them.
    const std::uint8_t* take(std::size_t n, const char* what);

    template <typename T>
    T get(const char* what) {
        T value;
        std::memcpy(&value, take(sizeof(T), what), sizeof(T));
        return value;
    }

private:
    std::size_t checked_end(std::size_t n) const;
    std::span<const std::uint8_t> bytes_;
    std::string path_;
    std::size_t pos_;
};

// Writes path.ane-tmp; commit() flushes, fsyncs, renames onto path and fsyncs the directory.
// Destroying an uncommitted writer removes the temporary file and leaves path untouched.
// The temporary's name is ours alone: one left by a killed run is reused by the next save
// of the same path, and a user's own "path.tmp" is never touched.
class AtomicWriter {
public:
    explicit AtomicWriter(const std::string& path);
    ~AtomicWriter();
    AtomicWriter(const AtomicWriter&) = delete;
    AtomicWriter& operator=(const AtomicWriter&) = delete;

    void write(const void* data, std::size_t n);
    template <typename T>
    void put(const T& value) { write(&value, sizeof(T)); }
    void write_zeros(std::size_t n);
    std::uint64_t written() const { return written_; }
    void commit();
    // commit() in two halves, for outputs of several files written as a whole: finish()
    // makes the temporary durable, publish() renames it into place.
    void finish();
    void publish();

private:
    std::string path_, tmp_path_;
    int fd_ = -1;
    bool finished_ = false;
    std::uint64_t written_ = 0;
    // Small writes are gathered here so that per-tensor puts do not each cost a syscall.
    std::string buffer_;
    void flush_buffer();
};

std::string temporary_path(const std::string& path);
// fsync of the directory holding path, so that a rename in it survives a crash.
void sync_parent_directory(const std::string& path);

// The whole file ("-" = stdin, pipes too) as bytes.
std::string read_text_file(const std::string& path);

}  // namespace ane
