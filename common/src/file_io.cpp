#include "ane/file_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <mutex>

#include "ane/error.hpp"

namespace ane {

namespace {

std::string errno_text() { return std::strerror(errno); }

std::vector<std::uint8_t> read_all(int fd, const std::string& path) {
    std::vector<std::uint8_t> out;
    std::uint8_t chunk[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof(chunk));
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw error(display_path(path), ": read failed: ", errno_text());
        }
        out.insert(out.end(), chunk, chunk + n);
    }
    return out;
}

// Streams read so far, by path: a stream can be read only once, yet a reader may open it twice.
std::mutex g_streams_mutex;
std::map<std::string, std::shared_ptr<const std::vector<std::uint8_t>>> g_streams;

std::shared_ptr<const std::vector<std::uint8_t>> cached_stream(const std::string& path) {
    const std::lock_guard<std::mutex> lock(g_streams_mutex);
    const auto it = g_streams.find(path);
    return it == g_streams.end() ? nullptr : it->second;
}

std::shared_ptr<const std::vector<std::uint8_t>> stream_bytes(int fd, const std::string& path) {
    if (auto cached = cached_stream(path)) return cached;
    auto bytes = std::make_shared<const std::vector<std::uint8_t>>(read_all(fd, path));
    const std::lock_guard<std::mutex> lock(g_streams_mutex);
    return g_streams.emplace(path, std::move(bytes)).first->second;
}

}  // namespace

bool is_stdin_path(const std::string& path) { return path == "-"; }
std::string display_path(const std::string& path) { return is_stdin_path(path) ? std::string("<stdin>") : path; }

MappedFile::MappedFile(const std::string& path) : path_(display_path(path)) {
    // A stream read before is not opened again: a FIFO without a writer would block the open.
    if (is_stdin_path(path) || (stream_ = cached_stream(path))) {
        if (!stream_) stream_ = stream_bytes(STDIN_FILENO, path);
        data_ = stream_->data();
        size_ = stream_->size();
        return;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw error(path, ": cannot open: ", errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        std::string why = errno_text();
        ::close(fd);
        throw error(path, ": cannot stat: ", why);
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw error(path, ": is a directory, expected a file");
    }
    if (!S_ISREG(st.st_mode)) {
        try {
            stream_ = stream_bytes(fd, path);
        } catch (...) {
            ::close(fd);
            throw;
        }
        ::close(fd);
        data_ = stream_->data();
        size_ = stream_->size();
        return;
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            std::string why = errno_text();
            ::close(fd);
            throw error(path, ": cannot map: ", why);
        }
        data_ = static_cast<const std::uint8_t*>(p);
    }
    ::close(fd);
}

void MappedFile::release(const void* p, std::size_t n) const {
    if (!data_ || n == 0 || stream_) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(p), end = begin + n;
    const std::uintptr_t lo = (begin + page - 1) / page * page, hi = end / page * page;
    const auto file_lo = reinterpret_cast<std::uintptr_t>(data_), file_hi = file_lo + size_;
    if (hi <= lo || lo < file_lo || hi > file_hi + page) return;
    ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_ && !stream_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_), stream_(std::move(other.stream_)) {
    other.data_ = nullptr;
    other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        if (data_ && !stream_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
        path_ = std::move(other.path_);
        data_ = other.data_;
        size_ = other.size_;
        stream_ = std::move(other.stream_);
        other.data_ = nullptr;
        other.size_ = 0;
    }
    return *this;
}

std::size_t ByteReader::checked_end(std::size_t n) const {
    if (n > bytes_.size() - pos_)
        throw error(path_, ": truncated: needs ", n, " more bytes at offset ", pos_, " but the file has ",
                    bytes_.size(), " bytes");
    return pos_ + n;
}

void ByteReader::seek(std::size_t pos) {
    if (pos > bytes_.size())
        throw error(path_, ": truncated: offset ", pos, " is past the end of the file (", bytes_.size(),
                    " bytes)");
    pos_ = pos;
}

const std::uint8_t* ByteReader::take(std::size_t n, const char* what) {
    if (n > bytes_.size() - pos_)
        throw error(path_, ": truncated: ", what, " needs ", n, " bytes at offset ", pos_,
                    " but the file has ", bytes_.size(), " bytes");
    const std::uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
}

std::string temporary_path(const std::string& path) {
    std::string tmp = path;
    tmp.append(".ane-tmp");
    return tmp;
}

AtomicWriter::AtomicWriter(const std::string& path) : path_(path), tmp_path_(temporary_path(path)) {
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw error(tmp_path_, ": cannot create: ", errno_text());
    buffer_.reserve(1 << 20);
}

AtomicWriter::~AtomicWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (fd_ >= 0 || finished_) ::unlink(tmp_path_.c_str());
}

void AtomicWriter::flush_buffer() {
    const char* p = buffer_.data();
    std::size_t left = buffer_.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw error(tmp_path_, ": write failed: ", errno_text());
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    buffer_.clear();
}

void AtomicWriter::write(const void* data, std::size_t n) {
    written_ += n;
    if (buffer_.size() + n <= buffer_.capacity()) {
        buffer_.append(static_cast<const char*>(data), n);
        return;
    }
    flush_buffer();
    if (n < buffer_.capacity()) {
        buffer_.append(static_cast<const char*>(data), n);
        return;
    }
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd_, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw error(tmp_path_, ": write failed: ", errno_text());
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void AtomicWriter::write_zeros(std::size_t n) {
    static const char zeros[1 << 16] = {};
    while (n > 0) {
        std::size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        write(zeros, k);
        n -= k;
    }
}

void AtomicWriter::commit() {
    finish();
    publish();
}

void AtomicWriter::finish() {
    if (fd_ < 0) return;
    flush_buffer();
    if (::fsync(fd_) != 0) throw error(tmp_path_, ": fsync failed: ", errno_text());
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
        const std::string why = errno_text();
        ::unlink(tmp_path_.c_str());
        throw error(tmp_path_, ": close failed: ", why);
    }
    finished_ = true;
}

void AtomicWriter::publish() {
    if (!finished_) return;
    finished_ = false;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        std::string why = errno_text();
        ::unlink(tmp_path_.c_str());
        throw error(path_, ": cannot rename ", tmp_path_, " into place: ", why);
    }
    sync_parent_directory(path_);
}

void sync_parent_directory(const std::string& path) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = std::filesystem::current_path();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // nothing more can be done; the rename itself succeeded
    ::fsync(fd);
    ::close(fd);
}

std::string read_text_file(const std::string& path) {
    MappedFile f(path);
    return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

}  // namespace ane
