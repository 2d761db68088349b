#include "ane/spin_pool.hpp"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ane {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

}  // namespace

SpinPool::SpinPool(int threads, int spin_us) : spin_us_(spin_us) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

SpinPool::~SpinPool() {
    stop_.store(true);
    generation_.fetch_add(1);
    {
        std::lock_guard<std::mutex> lock(mutex_);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

// Spins on `ready` for up to spin_us_, checking the clock every 256 polls; then, when allowed,
// sleeps on the condition variable (the caller has announced itself in sleepers_), else yields.
bool SpinPool::wait_for(const std::function<bool()>& ready, bool may_sleep) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
    for (int polls = 0;; ++polls) {
        if (ready()) return true;
        cpu_relax();
        if ((polls & 255) == 255 && std::chrono::steady_clock::now() >= deadline) break;
    }
    if (!may_sleep) {
        while (!ready()) std::this_thread::yield();
        return true;
    }
    // Announce the sleep before the last check: a job published after this increment sees
    // the sleeper and notifies under the mutex; one published before it is seen by ready().
    sleepers_.fetch_add(1);
    {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, ready);
    }
    sleepers_.fetch_sub(1);
    return true;
}

namespace {
constexpr std::uint64_t kClosed = 1ull << 32, kActive = kClosed - 1;
constexpr int kGenerationShift = 33;
}  // namespace

void SpinPool::work(int index) {
    std::uint64_t seen = 0;
    for (;;) {
        wait_for([&] { return generation_.load() != seen; }, true);
        seen = generation_.load();
        if (stop_.load()) return;
        // A share() job may be gone and the next job being published while this thread woke:
        // then the fields are not (all) this generation's, and a later round takes the next job.
        // (Acting on a run() job's fields under a share() job's generation ran it twice, and the
        // caller waited for ever on its count.)
        if (job_generation_.load() != seen) continue;
        const bool everyone = everyone_.load();
        const std::function<void(int, int)>* job = job_.load();
        if (job_generation_.load() != seen) continue;
        if (everyone) {
            (*job)(index, threads());
            pending_.fetch_sub(1);
            continue;
        }
        // Join unless the caller has closed this generation's job (or moved past it).
        std::uint64_t state = shared_.load();
        bool joined = false;
        while ((state >> kGenerationShift) == (seen & ((1ull << 31) - 1)) && !(state & kClosed))
            if (shared_.compare_exchange_weak(state, state + 1)) {
                joined = true;
                break;
            }
        if (!joined) continue;
        joins_.fetch_add(1, std::memory_order_relaxed);
        (*job)(index, threads());
        shared_.fetch_sub(1);
    }
}

void SpinPool::wake_sleepers() {
    if (sleepers_.load() > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        wake_.notify_all();
    }
}

void SpinPool::publish(const std::function<void(int, int)>& job, bool everyone) {
    job_generation_.store(0);
    job_.store(&job);
    everyone_.store(everyone);
    const std::uint64_t next = generation_.load() + 1;
    if (everyone)
        pending_.store(int(workers_.size()));
    else
        shared_.store((next & ((1ull << 31) - 1)) << kGenerationShift);
    job_generation_.store(next);
    generation_.store(next);
    wake_sleepers();
}

void SpinPool::run(const std::function<void(int, int)>& job) {
    if (workers_.empty()) return job(0, 1);
    publish(job, true);
    job(0, threads());
    wait_for([&] { return pending_.load() == 0; }, false);
}

void SpinPool::share(const std::function<void()>& work) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    if (workers_.empty() || start < alone_until_) return work();
    const std::function<void(int, int)> job = [&](int, int) { work(); };
    const long joined_before = joins_.load(std::memory_order_relaxed);
    publish(job, false);
    work();
    const auto done = Clock::now();
    // Closed: a worker that has not joined by now skips this job; wait for those that did.
    shared_.fetch_or(kClosed);
    wait_for([&] { return (shared_.load() & kActive) == 0; }, false);
    const double waited = std::chrono::duration<double>(Clock::now() - done).count();
    const double own = std::chrono::duration<double>(done - start).count();
    // No worker joined (counted once one has: a new worker thread may still be starting).
    const long joined = joins_.load(std::memory_order_relaxed);
    if (joined > 0) {
        missed_ += joined == joined_before;
        if (++window_ == kMissWindow) {
            const bool busy = missed_ >= kMissedBusy;
            window_ = missed_ = 0;
            if (busy) {
                ++stalls_;
                ++missed_windows_;
                alone_until_ = done + std::chrono::microseconds(static_cast<std::int64_t>(alone_ms * 1e3));
                return;
            }
        }
    }
    if (waited * 1e3 > stall_ms && waited > 0.5 * own) {
        // One stall can be a hiccup of an idle machine (an interrupt, a page fault, the host
        // taking a virtual CPU for a while); a second within repeat_ms is a busy core.
        const auto now = Clock::now();
        if (now - last_stall_ < std::chrono::microseconds(static_cast<std::int64_t>(repeat_ms * 1e3))) {
            ++stalls_;
            alone_until_ = now + std::chrono::microseconds(static_cast<std::int64_t>(alone_ms * 1e3));
        }
        last_stall_ = now;
    }
}

}  // namespace ane
