#pragma once
// Typed reads of fields from JSON the suite did not write (config.json, trailers, headers):
// checked before conversion, so that 4294967328 is an error and not 32, and a string where a
// number belongs names the field instead of escaping as a library exception.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace ane {

// An integer in [lo, hi]; `where` and `field` name it in the error.
std::int64_t json_integer(const nlohmann::json& v, const std::string& where, const std::string& field, std::int64_t lo,
                          std::int64_t hi);
inline int json_int(const nlohmann::json& v, const std::string& where, const std::string& field, int lo = 0,
                    int hi = INT32_MAX) {
    return int(json_integer(v, where, field, lo, hi));
}
// A finite number.
double json_number(const nlohmann::json& v, const std::string& where, const std::string& field);
// A string.
std::string json_string(const nlohmann::json& v, const std::string& where, const std::string& field);

}  // namespace ane
