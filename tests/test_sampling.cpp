#include <gtest/gtest.h>

#include <cstdlib>

#include "ane/sampling.hpp"

using namespace ane;

TEST(Sampling, Drand48MatchesTheSpecVectorsAndLibc) {
    Drand48 r(42);
    EXPECT_DOUBLE_EQ(r.next(), 0.74452500006100664);
    EXPECT_DOUBLE_EQ(r.next(), 0.34270147871890799);
    EXPECT_DOUBLE_EQ(r.next(), 0.11108528244416149);
    for (long seed : {0L, 1L, 42L, 12345L, -7L, 4294967297L}) {
        srand48(seed);
        Drand48 ours(seed);
        for (int i = 0; i < 1000; ++i) ASSERT_EQ(ours.next(), drand48()) << "seed " << seed;
    }
    unsigned short xsubi[3] = {701, 1303, 1705};
    Drand48 e;
    e.set_state({701, 1303, 1705});
    for (int i = 0; i < 100; ++i) ASSERT_EQ(e.next(), erand48(xsubi));
}

// spec/data.md §7: AutoANE's train.m offsets on the 20M-token SmolLM2 file.
TEST(Sampling, TrainWindowsMatchAutoANE) {
    TrainWindowSampler s128(18'000'000, 128, 42);
    EXPECT_EQ(s128.next(), 13'401'353u);
    TrainWindowSampler s256(18'000'000, 256, 42);
    EXPECT_EQ(s256.next(), 13'401'258u);
    const auto val = train_validation_offsets(100, 18'000'000, 2'000'000, 128);
    ASSERT_EQ(val.size(), 10u);
    EXPECT_EQ(val[0], 18'779'773u);
    for (auto v : val) {
        EXPECT_GE(v, 18'000'000u);
        EXPECT_LE(v + 129, 20'000'000u);
    }
}

TEST(Sampling, ResumeReseedsWithSeedPlusStep) {
    TrainWindowSampler resumed(1000, 16, 42, 5);
    TrainWindowSampler fresh(1000, 16, 47, 0);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(resumed.next(), fresh.next());
}

TEST(Sampling, MezoWindowsArePureFunctionsOfSeedAndStep) {
    EXPECT_EQ(mezo_window_offset(42, 3, 100000, 64), mezo_window_offset(42, 3, 100000, 64));
    srand48(42 + 3 * 7919);
    EXPECT_EQ(mezo_window_offset(42, 3, 100000, 64), std::size_t(drand48() * double(100000 - 65)));
    EXPECT_EQ(mezo_validation_offsets(900, 100, 16), mezo_validation_offsets(900, 100, 16));
    EXPECT_THROW(TrainWindowSampler(10, 16, 1), std::exception);
}
