#pragma once
// Statistics the benchmarks share.
#include <algorithm>
#include <vector>

// The median of the samples (the upper one of an even count).
inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}
