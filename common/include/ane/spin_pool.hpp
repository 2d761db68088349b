#pragma once
// Worker threads for short parallel loops: a decoded token's matrix-vector products take tens
// of microseconds, less than an OpenMP team takes to wake from a passive wait. Between jobs a
// worker spins for a bounded time (spin_us, 50 by default), then sleeps until the next job:
// on an idle machine the next job starts within nanoseconds, and on a busy one a waiting
// worker burns at most that spin before giving its core back.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ane {

class SpinPool {
public:
    explicit SpinPool(int threads, int spin_us = 50);
    ~SpinPool();
    SpinPool(const SpinPool&) = delete;
    SpinPool& operator=(const SpinPool&) = delete;

    int threads() const { return int(workers_.size()) + 1; }
    // Calls job(index, threads) once on each of the threads (the caller is index 0) and
    // returns when all have returned. Not reentrant: one job at a time.
    void run(const std::function<void(int, int)>& job);

private:
    void work(int index);
    bool wait_for(const std::function<bool()>& ready, bool may_sleep);

    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    const int spin_us_;
};

}  // namespace ane
