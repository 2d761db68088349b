#pragma once
// Worker threads for short parallel loops: a decoded token's matrix-vector products take tens
// of microseconds, less than an OpenMP team takes to wake from a passive wait. Between jobs a
// worker spins for a bounded time (spin_us, 50 by default), then sleeps until the next job:
// on an idle machine the next job starts within nanoseconds, and on a busy one a waiting
// worker burns at most that spin before giving its core back.
#include <atomic>
#include <chrono>
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
    // For work that threads take item by item until none is left, so that any number of
    // threads finish it: work() runs on the caller and on every worker that joins before the
    // caller is done with it; a worker that wakes later (asleep, or its core taken by another
    // process) skips the job instead of making the caller wait. When a worker that did join
    // is descheduled in the middle of it (the caller, done, waited more than stall_ms and more
    // than half its own time for it) twice within repeat_ms, the machine is busy: the caller
    // runs the work alone for the next alone_ms, then tries the pool again, so a busy core
    // costs about the speed of one thread. So it is when no worker joined 26 of 32 jobs:
    // short jobs (a decoded token's products) while the workers' cores are taken, where
    // waking them costs the caller a system call per job and some of its own core, for no
    // help. (Decoding at 2 threads, Zen 5: 0-3 such jobs of 32 on an idle machine, up to 14
    // as the pool starts; 19-32 beside a process burning a core.)
    void share(const std::function<void()>& work);
    static constexpr double stall_ms = 0.5, repeat_ms = 100.0, alone_ms = 200.0;
    // How many times the pool fell back to the caller alone (for reports and tests).
    int stalls() const { return stalls_; }
    // How many of those were windows of jobs no worker joined.
    int missed_windows() const { return missed_windows_; }

private:
    void work(int index);
    // Publishes a job: every worker runs it (everyone) or those that join in time (share).
    void publish(const std::function<void(int, int)>& job, bool everyone);
    void wake_sleepers();
    bool wait_for(const std::function<bool()>& ready, bool may_sleep);

    std::vector<std::thread> workers_;
    // Written by the caller before it publishes a generation; a worker woken late may read the
    // next job's values while the caller writes them, hence atomics.
    std::atomic<const std::function<void(int, int)>*> job_{nullptr};
    std::atomic<bool> everyone_{true};
    std::atomic<std::uint64_t> generation_{0};
    // The generation the fields above and below belong to, 0 while publish() rewrites them: a
    // worker acts on them only when it reads its own generation here before and after them.
    std::atomic<std::uint64_t> job_generation_{0};
    std::atomic<int> pending_{0};  // run(): workers not yet done
    // share(): the job's generation (bits 33 and up), closed to joiners (bit 32), and how many
    // workers joined and are not done (low 32 bits).
    std::atomic<std::uint64_t> shared_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    const int spin_us_;
    std::chrono::steady_clock::time_point alone_until_{}, last_stall_{};
    int stalls_ = 0;
    // share(): jobs no worker joined, in the current window of jobs.
    static constexpr int kMissWindow = 32, kMissedBusy = 26;
    int window_ = 0, missed_ = 0, missed_windows_ = 0;
    std::atomic<long> joins_{0};  // by workers, over all share() jobs
};

}  // namespace ane
