#include "ane/distributed.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ane/error.hpp"

#ifdef ANE_HAVE_MPI
#include <mpi.h>
#endif

namespace ane::dist {

std::uint64_t fingerprint(const void* data, std::size_t n, std::uint64_t seed) {
    // FNV-1a's step on 8-byte words (several GB/s), then the tail bytes.
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t h = seed;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

std::string rank_suffix() {
    return size() > 1 ? " (rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ")" : "";
}

#ifdef ANE_HAVE_MPI

namespace {
bool g_active = false;
int g_rank = 0, g_size = 1;

// The environment MPI launchers give their processes (Open MPI, MPICH/Hydra, Slurm's PMI).
bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(v)) return true;
    return false;
}
}  // namespace

bool built_with_mpi() { return true; }

void init() {
    if (g_active || !launched_by_mpi()) return;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        int provided = 0;
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    }
    g_active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_rank != 0) {
        if (!std::freopen("/dev/null", "w", stdout)) std::fclose(stdout);
    }
}

void finalize() {
    if (!g_active) return;
    g_active = false;
    MPI_Finalize();
}

void abort_all(int code) {
    if (g_active && g_size > 1) {
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
}

int rank() { return g_rank; }
int size() { return g_size; }

void allreduce_sum(double* data, std::size_t n) {
    if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void allreduce_sum(float* data, std::size_t n) {
    if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void broadcast(double* data, std::size_t n) {
    if (g_size > 1) MPI_Bcast(data, int(n), MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

void require_same(std::uint64_t value, const std::string& what) {
    if (g_size <= 1) return;
    std::vector<std::uint64_t> all(static_cast<std::size_t>(g_size));
    MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    std::string differ;
    for (int r = 1; r < g_size; ++r)
        if (all[std::size_t(r)] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
    require(differ.empty(), "rank(s) ", differ, " of ", g_size, " differ from rank 0 in ", what);
}

struct AsyncSum::Requests {
    std::vector<MPI_Request> list;
};

AsyncSum::AsyncSum() : requests_(std::make_unique<Requests>()) {}
AsyncSum::~AsyncSum() { wait(); }

void AsyncSum::start(float* data, std::size_t n) {
    if (g_size <= 1 || n == 0) return;
    requests_->list.emplace_back();
    MPI_Iallreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &requests_->list.back());
    bytes_ += n * sizeof(float);
}

void AsyncSum::progress() {
    if (requests_->list.empty()) return;
    int done = 0;
    MPI_Testall(int(requests_->list.size()), requests_->list.data(), &done, MPI_STATUSES_IGNORE);
}

void AsyncSum::wait() {
    if (requests_->list.empty()) return;
    MPI_Waitall(int(requests_->list.size()), requests_->list.data(), MPI_STATUSES_IGNORE);
    requests_->list.clear();
}

#else  // one process: every collective is the identity

bool built_with_mpi() { return false; }
void init() {}
void finalize() {}
void abort_all(int) {}
int rank() { return 0; }
int size() { return 1; }
void allreduce_sum(double*, std::size_t) {}
void allreduce_sum(float*, std::size_t) {}
void broadcast(double*, std::size_t) {}
void require_same(std::uint64_t, const std::string&) {}
struct AsyncSum::Requests {};
AsyncSum::AsyncSum() = default;
AsyncSum::~AsyncSum() = default;
void AsyncSum::start(float*, std::size_t) {}
void AsyncSum::progress() {}
void AsyncSum::wait() {}

#endif

}  // namespace ane::dist
