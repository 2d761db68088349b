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

void SpinPool::work(int index) {
    std::uint64_t seen = 0;
    for (;;) {
        wait_for([&] { return generation_.load() != seen; }, true);
        seen = generation_.load();
        if (stop_.load()) return;
        (*job_)(index, threads());
        pending_.fetch_sub(1);
    }
}

void SpinPool::run(const std::function<void(int, int)>& job) { run_timed(job); }

void SpinPool::share(const std::function<void()>& work) {
    const auto now = std::chrono::steady_clock::now();
    if (workers_.empty() || now < alone_until_) return work();
    const double waited = run_timed([&](int, int) { work(); });
    if (waited * 1e3 > stall_ms) {
        ++stalls_;
        alone_until_ = std::chrono::steady_clock::now() +
                       std::chrono::microseconds(static_cast<std::int64_t>(alone_ms * 1e3));
    }
}

double SpinPool::run_timed(const std::function<void(int, int)>& job) {
    if (workers_.empty()) {
        job(0, 1);
        return 0.0;
    }
    job_ = &job;
    pending_.store(int(workers_.size()));
    generation_.fetch_add(1);
    if (sleepers_.load() > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        wake_.notify_all();
    }
    job(0, threads());
    const auto done = std::chrono::steady_clock::now();
    wait_for([&] { return pending_.load() == 0; }, false);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - done).count();
}

}  // namespace ane
