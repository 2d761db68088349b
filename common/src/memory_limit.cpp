#include "ane/memory_limit.hpp"

#include <unistd.h>

#include <cstdio>

#include "ane/error.hpp"

namespace ane {

std::uint64_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : 0;
}

void require_memory(double bytes, const std::string& what) {
    const std::uint64_t have = physical_memory_bytes();
    if (have == 0 || bytes <= double(have)) return;
    char need_text[32], have_text[32];
    std::snprintf(need_text, sizeof(need_text), "%.1f GB", bytes / 1e9);
    std::snprintf(have_text, sizeof(have_text), "%.1f GB", double(have) / 1e9);
    throw error(what, " needs ", need_text, " of memory, more than this machine's ", have_text);
}

}  // namespace ane
