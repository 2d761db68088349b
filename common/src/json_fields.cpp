#include "ane/json_fields.hpp"

#include <cmath>

#include "ane/error.hpp"

namespace ane {

std::int64_t json_integer(const nlohmann::json& v, const std::string& where, const std::string& field, std::int64_t lo,
                          std::int64_t hi) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        require(u <= std::uint64_t(hi) && std::int64_t(u) >= lo, where, ": ", field, " = ", u,
                " is out of range [", lo, ", ", hi, "]");
        return std::int64_t(u);
    }
    require(v.is_number_integer(), where, ": ", field, " must be an integer, not ", v.dump());
    const auto i = v.get<std::int64_t>();
    require(i >= lo && i <= hi, where, ": ", field, " = ", i, " is out of range [", lo, ", ", hi, "]");
    return i;
}

double json_number(const nlohmann::json& v, const std::string& where, const std::string& field) {
    require(v.is_number(), where, ": ", field, " must be a number, not ", v.dump());
    const double d = v.get<double>();
    require(std::isfinite(d), where, ": ", field, " must be finite");
    return d;
}

std::string json_string(const nlohmann::json& v, const std::string& where, const std::string& field) {
    require(v.is_string(), where, ": ", field, " must be a string, not ", v.dump());
    return v.get<std::string>();
}

}  // namespace ane
