#include "ane/mezo/xoshiro_jump.hpp"

#include <array>
#include <bit>
#include <vector>

namespace ane {

namespace {

// A polynomial over GF(2) of degree below 512: bit i of the words is the coefficient of x^i.
using Poly = std::array<std::uint64_t, 8>;
constexpr int kDegree = 256;  // xoshiro256: the state update is a 256x256 matrix over GF(2)

bool bit(const Poly& p, int i) { return (p[std::size_t(i >> 6)] >> (i & 63)) & 1u; }
void flip(Poly& p, int i) { p[std::size_t(i >> 6)] ^= std::uint64_t(1) << (i & 63); }

// The characteristic polynomial of the update, found by Berlekamp-Massey from one bit of the
// state over 2·256 steps (the period is 2^256 - 1, so that bit's minimal polynomial is it).
Poly characteristic_polynomial() {
    Xoshiro256Plus rng(1);
    std::vector<int> s(2 * kDegree);
    for (auto& b : s) {
        b = int(rng.state()[0] & 1u);
        rng.next();
    }
    Poly c{}, prev{};
    c[0] = prev[0] = 1;
    int length = 0, gap = 1;
    for (int n = 0; n < int(s.size()); ++n) {
        int d = s[std::size_t(n)];
        for (int i = 1; i <= length; ++i) d ^= int(bit(c, i)) & s[std::size_t(n - i)];
        if (d == 0) {
            ++gap;
            continue;
        }
        const Poly before = c;
        for (int i = 0; i + gap < 512; ++i)
            if (bit(prev, i)) flip(c, i + gap);
        if (2 * length <= n) {
            length = n + 1 - length;
            prev = before;
            gap = 1;
        } else {
            ++gap;
        }
    }
    // c is the connection polynomial (s[n] = sum of c_i s[n-i]); the characteristic one is its
    // reverse, x^L c(1/x).
    Poly p{};
    for (int i = 0; i <= length; ++i)
        if (bit(c, i)) flip(p, length - i);
    return p;
}

const Poly& update_polynomial() {
    static const Poly p = characteristic_polynomial();
    return p;
}

// acc ^= src · x^shift (the part that fits in 512 bits).
void add_shifted(Poly& acc, const Poly& src, int src_words, int shift) {
    const int words = shift >> 6, bits = shift & 63;
    for (int w = src_words - 1; w >= 0; --w) {
        const std::uint64_t v = src[std::size_t(w)];
        if (w + words < 8) acc[std::size_t(w + words)] ^= v << bits;
        if (bits && w + words + 1 < 8) acc[std::size_t(w + words + 1)] ^= v >> (64 - bits);
    }
}

void reduce(Poly& a) {
    const Poly& p = update_polynomial();  // degree 256: five words
    for (int j = 2 * kDegree - 1; j >= kDegree; --j)
        if (bit(a, j)) add_shifted(a, p, 5, j - kDegree);
}

Poly multiply(const Poly& a, const Poly& b) {
    Poly r{};
    for (int i = 0; i < kDegree; ++i)
        if (bit(a, i)) add_shifted(r, b, 4, i);
    reduce(r);
    return r;
}

}  // namespace

XoshiroJump::XoshiroJump(std::uint64_t k) {
    // r = x^k mod p, by squaring from the top bit of k down.
    Poly r{};
    r[0] = 1;
    const int top = k == 0 ? -1 : 63 - std::countl_zero(k);  // x^0 = 1 for k = 0
    for (int b = top; b >= 0; --b) {
        r = multiply(r, r);
        if ((k >> b) & 1u) {
            Poly shifted{};
            for (int w = 7; w >= 0; --w)
                shifted[std::size_t(w)] = (r[std::size_t(w)] << 1) | (w ? r[std::size_t(w - 1)] >> 63 : 0);
            r = shifted;
            reduce(r);
        }
    }
    for (int w = 0; w < 4; ++w) coefficients_[std::size_t(w)] = r[std::size_t(w)];
}

void XoshiroJump::apply(Xoshiro256Plus& rng) const {
    // T^k = r(T): the sum of the states T^i s for the coefficients of r that are set.
    std::uint64_t sum[4] = {0, 0, 0, 0};
    for (int i = 0; i < kDegree; ++i) {
        if ((coefficients_[std::size_t(i >> 6)] >> (i & 63)) & 1u)
            for (int w = 0; w < 4; ++w) sum[w] ^= rng.state()[w];
        rng.next();
    }
    rng.set_state(sum);
}

void jump_ahead(Xoshiro256Plus& rng, std::uint64_t k) {
    if (k != 0) XoshiroJump(k).apply(rng);
}

}  // namespace ane
