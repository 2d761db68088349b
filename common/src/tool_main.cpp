#include "ane/tool_main.hpp"

#include <exception>
#include <new>
#include <string>

#include "ane/distributed.hpp"
#include "ane/error.hpp"
#include "ane/log.hpp"

namespace ane {

int run_tool(const char* tool, const std::function<int()>& body) {
    std::string message;
    try {
        dist::init();
        const int code = body();
        dist::finalize();
        return code;
    } catch (const UsageError& e) {
        log::write(log::Level::Quiet, std::string(tool) + ": usage error: " + e.what() + " (see " + tool + " --help)");
        dist::abort_all(2);  // the other ranks would wait for this one forever
        return 2;
    } catch (const Error& e) {
        message = e.what();
    } catch (const std::bad_alloc&) {
        message = "out of memory";
    } catch (const std::exception& e) {
        message = e.what();
    }
    log::write(log::Level::Quiet, std::string(tool) + ": error: " + message + dist::rank_suffix());
    dist::abort_all(1);
    return 1;
}

}  // namespace ane
