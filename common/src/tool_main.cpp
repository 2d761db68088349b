#include "ane/tool_main.hpp"

#include <exception>
#include <new>
#include <string>

#include "ane/error.hpp"
#include "ane/log.hpp"

namespace ane {

int run_tool(const char* tool, const std::function<int()>& body) {
    std::string message;
    try {
        return body();
    } catch (const UsageError& e) {
        log::write(log::Level::Quiet, std::string(tool) + ": usage error: " + e.what() + " (see " + tool + " --help)");
        return 2;
    } catch (const Error& e) {
        message = e.what();
    } catch (const std::bad_alloc&) {
        message = "out of memory";
    } catch (const std::exception& e) {
        message = e.what();
    }
    log::write(log::Level::Quiet, std::string(tool) + ": error: " + message);
    return 1;
}

}  // namespace ane
