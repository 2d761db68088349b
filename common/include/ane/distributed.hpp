#pragma once
// Data parallelism across processes: MPI when the build has it and the tool was started by an
// MPI launcher (mpirun), else one rank. With one rank every call here is a no-op, so the tools
// behave exactly as a single process.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ane::dist {

// Starts MPI if this process was launched by mpirun (or another MPI launcher); on ranks other
// than 0, standard output is discarded (rank 0 alone reports). Safe to call more than once.
void init();
// Ends MPI normally (every rank reached the end).
void finalize();
// Ends every rank at once after an error on this one (MPI_Abort); returns without MPI.
void abort_all(int code);

bool built_with_mpi();
int rank();
int size();
inline bool is_root() { return rank() == 0; }
// "" with one rank, else " (rank R of N)" for messages.
std::string rank_suffix();

void allreduce_sum(double* data, std::size_t n);
void allreduce_sum(float* data, std::size_t n);
// Rank 0's values to every rank.
void broadcast(double* data, std::size_t n);
// Throws the same Error on every rank when a rank's `value` differs from rank 0's, naming the
// ranks and `what` ("the model and flags", "the weights").
void require_same(std::uint64_t value, const std::string& what);

// In-place sums started one buffer at a time (MPI_Iallreduce) and waited for together, so that
// communication overlaps the work between the starts.
class AsyncSum {
public:
    AsyncSum();
    ~AsyncSum();
    AsyncSum(const AsyncSum&) = delete;
    AsyncSum& operator=(const AsyncSum&) = delete;
    void start(float* data, std::size_t n);
    void progress();  // lets the started sums advance (MPI progresses inside MPI calls)
    void wait();
    std::uint64_t bytes() const { return bytes_; }  // floats summed so far, in bytes

private:
    struct Requests;
    std::unique_ptr<Requests> requests_;
    std::uint64_t bytes_ = 0;
};

// FNV-1a over bytes: cheap fingerprints of weights and settings for require_same.
std::uint64_t fingerprint(const void* data, std::size_t n, std::uint64_t seed = 1469598103934665603ull);

}  // namespace ane::dist
