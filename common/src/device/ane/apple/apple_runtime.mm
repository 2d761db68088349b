// The `ane` runtime: Apple's private AppleNeuralEngine framework, loaded by path with dlopen
// (spec/ane.md §1-2). Per kernel: descriptor from MIL text + weights, in-memory model, its
// temporary directory pre-populated, compile, load (retried once), one output IOSurface, one
// _ANERequest per bound input surface, evaluate, unload. Plain message syntax on `id` and
// manual retain/release, so that Apple's clang and GCC's Objective-C++ (GNUstep, for the
// Linux stand-in the tests load) both compile it.
#import <Foundation/Foundation.h>

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "../kernel_runtime.hpp"
#include "ane/error.hpp"
#include "ane/log.hpp"

#ifdef __APPLE__
#include <IOSurface/IOSurfaceRef.h>
#else
typedef struct __IOSurface* IOSurfaceRef;
#endif

// The selectors the runtime sends (declared so that both compilers type the messages).
@interface NSObject (AnetrainAppleNeuralEngine)
+ (id)modelWithMILText:(NSData*)text weights:(NSDictionary*)weights optionsPlist:(NSDictionary*)options;
+ (id)inMemoryModelWithDescriptor:(id)descriptor;
- (NSString*)hexStringIdentifier;
- (BOOL)compileWithQoS:(unsigned int)qos options:(NSDictionary*)options error:(NSError**)error;
- (BOOL)loadWithQoS:(unsigned int)qos options:(NSDictionary*)options error:(NSError**)error;
- (BOOL)evaluateWithQoS:(unsigned int)qos options:(NSDictionary*)options request:(id)request error:(NSError**)error;
- (BOOL)unloadWithQoS:(unsigned int)qos error:(NSError**)error;
+ (id)objectWithIOSurface:(IOSurfaceRef)surface;
+ (id)requestWithInputs:(NSArray*)inputs
           inputIndices:(NSArray*)inputIndices
                outputs:(NSArray*)outputs
          outputIndices:(NSArray*)outputIndices
          weightsBuffer:(id)weightsBuffer
              perfStats:(id)perfStats
         procedureIndex:(NSNumber*)procedureIndex;
@end

namespace ane {

namespace {

constexpr unsigned int kQoS = 21;           // what every caller of the framework passes
constexpr std::uint32_t kLockReadOnly = 1;  // kIOSurfaceLockReadOnly

// The IOSurface C API: linked on Apple; on other systems taken from the loaded framework
// (the stand-in defines the same functions).
struct IoSurfaceApi {
    IOSurfaceRef (*create)(const void* properties) = nullptr;
    int (*lock)(IOSurfaceRef, std::uint32_t options, std::uint32_t* seed) = nullptr;
    int (*unlock)(IOSurfaceRef, std::uint32_t options, std::uint32_t* seed) = nullptr;
    void* (*base_address)(IOSurfaceRef) = nullptr;
    std::size_t (*alloc_size)(IOSurfaceRef) = nullptr;
    void (*release)(const void*) = nullptr;
};

struct Framework {
    std::string path;
    id descriptor_class = nil, model_class = nil, request_class = nil, surface_class = nil;
    IoSurfaceApi io;
};

// Drains what the framework's convenience constructors autorelease, also when a call throws.
class Pool {
public:
    Pool() : pool_([[NSAutoreleasePool alloc] init]) {}
    ~Pool() { [pool_ drain]; }
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

private:
    NSAutoreleasePool* pool_;
};

std::string describe_error(NSError* error) {
    if (error == nil) return "no error given";
    const char* text = [[error description] UTF8String];
    return text ? text : "no description";
}

std::string not_found(const std::string& path, const std::string& why) {
    if (path == default_ane_framework_path())
        return "ane: AppleNeuralEngine framework not found (macOS on Apple Silicon only); use --device cpu or ane-sim";
    return "ane: cannot use the framework ANE_FRAMEWORK names (" + path + "): " + why;
}

// Loaded once per process and never unloaded: the Objective-C runtime keeps its classes.
const Framework& load_framework(const std::string& path) {
    static std::map<std::string, Framework> loaded;
    auto it = loaded.find(path);
    if (it != loaded.end()) return it->second;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = dlerror();
        throw Error(not_found(path, why ? why : "dlopen failed"));
    }
    Pool pool;
    Framework f;
    f.path = path;
    const auto resolve = [&](const char* name) -> id {
        id c = NSClassFromString([NSString stringWithUTF8String:name]);
        if (c == nil) throw Error(not_found(path, std::string("it has no class ") + name));
        return c;
    };
    f.descriptor_class = resolve("_ANEInMemoryModelDescriptor");
    f.model_class = resolve("_ANEInMemoryModel");
    f.request_class = resolve("_ANERequest");
    f.surface_class = resolve("_ANEIOSurfaceObject");
#ifdef __APPLE__
    f.io.create = [](const void* p) { return IOSurfaceCreate(static_cast<CFDictionaryRef>(p)); };
    f.io.lock = [](IOSurfaceRef s, std::uint32_t o, std::uint32_t* seed) {
        return int(IOSurfaceLock(s, static_cast<IOSurfaceLockOptions>(o), seed));
    };
    f.io.unlock = [](IOSurfaceRef s, std::uint32_t o, std::uint32_t* seed) {
        return int(IOSurfaceUnlock(s, static_cast<IOSurfaceLockOptions>(o), seed));
    };
    f.io.base_address = IOSurfaceGetBaseAddress;
    f.io.alloc_size = IOSurfaceGetAllocSize;
    f.io.release = CFRelease;
#else
    const auto symbol = [&](auto& fn, const char* name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
        if (!fn) throw Error(not_found(path, std::string("it has no function ") + name));
    };
    symbol(f.io.create, "IOSurfaceCreate");
    symbol(f.io.lock, "IOSurfaceLock");
    symbol(f.io.unlock, "IOSurfaceUnlock");
    symbol(f.io.base_address, "IOSurfaceGetBaseAddress");
    symbol(f.io.alloc_size, "IOSurfaceGetAllocSize");
    symbol(f.io.release, "CFRelease");
#endif
    return loaded.emplace(path, f).first->second;
}

NSString* surface_key(const char* name) {
#ifdef __APPLE__
    // The values of kIOSurfaceWidth etc. are these very strings; the constants are used anyway.
    if (!std::strcmp(name, "IOSurfaceWidth")) return (NSString*)kIOSurfaceWidth;
    if (!std::strcmp(name, "IOSurfaceHeight")) return (NSString*)kIOSurfaceHeight;
    if (!std::strcmp(name, "IOSurfaceBytesPerElement")) return (NSString*)kIOSurfaceBytesPerElement;
    if (!std::strcmp(name, "IOSurfaceBytesPerRow")) return (NSString*)kIOSurfaceBytesPerRow;
    if (!std::strcmp(name, "IOSurfaceAllocSize")) return (NSString*)kIOSurfaceAllocSize;
    if (!std::strcmp(name, "IOSurfacePixelFormat")) return (NSString*)kIOSurfacePixelFormat;
#endif
    return [NSString stringWithUTF8String:name];
}

// One fp16 IOSurface (spec §2: a plain byte buffer) and the _ANEIOSurfaceObject wrapping it.
class IoSurface final : public Surface {
public:
    IoSurface(const Framework& f, std::size_t bytes, const std::string& kernel) : io_(f.io), kernel_(kernel) {
        Pool pool;
        NSNumber* size = [NSNumber numberWithUnsignedLong:bytes];
        NSNumber* one = [NSNumber numberWithInt:1];
        NSDictionary* properties = [NSDictionary dictionaryWithObjectsAndKeys:
            size, surface_key("IOSurfaceWidth"), one, surface_key("IOSurfaceHeight"),
            one, surface_key("IOSurfaceBytesPerElement"), size, surface_key("IOSurfaceBytesPerRow"),
            size, surface_key("IOSurfaceAllocSize"), [NSNumber numberWithInt:0], surface_key("IOSurfacePixelFormat"),
            nil];
        ref_ = io_.create((const void*)properties);
        if (!ref_) throw Error("ane: kernel " + kernel + ": IOSurfaceCreate failed for " + std::to_string(bytes) + " bytes");
        if (io_.alloc_size(ref_) < bytes) {
            io_.release(ref_);
            throw Error("ane: kernel " + kernel + ": an IOSurface of " + std::to_string(bytes) + " bytes is smaller");
        }
        object_ = [[f.surface_class objectWithIOSurface:ref_] retain];
        if (object_ == nil) {
            io_.release(ref_);
            throw Error("ane: kernel " + kernel + ": _ANEIOSurfaceObject refused the surface");
        }
        std::memset(lock(false), 0, bytes);
        unlock(false);
    }
    ~IoSurface() override {
        [object_ release];
        io_.release(ref_);
    }
    IoSurface(const IoSurface&) = delete;
    IoSurface& operator=(const IoSurface&) = delete;

    std::uint16_t* lock(bool read_only) override {
        if (io_.lock(ref_, read_only ? kLockReadOnly : 0, nullptr) != 0)
            throw Error("ane: kernel " + kernel_ + ": IOSurfaceLock failed");
        return static_cast<std::uint16_t*>(io_.base_address(ref_));
    }
    void unlock(bool read_only) override {  // from destructors: reported, never thrown
        if (io_.unlock(ref_, read_only ? kLockReadOnly : 0, nullptr) != 0)
            log::warn("ane: kernel " + kernel_ + ": IOSurfaceUnlock failed");
    }
    id object() const { return object_; }

private:
    const IoSurfaceApi& io_;
    std::string kernel_;
    IOSurfaceRef ref_ = nullptr;
    id object_ = nil;
};

class AppleInput final : public BoundInput {
public:
    AppleInput(const Framework& f, std::size_t bytes, const std::string& kernel, const IoSurface& output)
        : kernel_(kernel), surface_(f, bytes, kernel) {
        Pool pool;
        NSArray* zero = [NSArray arrayWithObject:[NSNumber numberWithInt:0]];
        request_ = [[f.request_class requestWithInputs:[NSArray arrayWithObject:surface_.object()]
                                          inputIndices:zero
                                               outputs:[NSArray arrayWithObject:output.object()]
                                         outputIndices:zero
                                         weightsBuffer:nil
                                             perfStats:nil
                                        procedureIndex:[NSNumber numberWithInt:0]] retain];
        if (request_ == nil) throw Error("ane: kernel " + kernel + ": _ANERequest refused the surfaces");
    }
    ~AppleInput() override { [request_ release]; }
    AppleInput(const AppleInput&) = delete;
    AppleInput& operator=(const AppleInput&) = delete;

    Surface& surface() override { return surface_; }
    id request() const { return request_; }
    const std::string& kernel() const { return kernel_; }

private:
    std::string kernel_;
    IoSurface surface_;
    id request_ = nil;
};

// An in-memory model (retained) and its temporary directory: unloaded if it was loaded,
// released and removed however the compile ends.
struct ModelHandle {
    std::string kernel;
    id model = nil;
    std::filesystem::path directory;
    bool loaded = false;
    ModelHandle(std::string name, id m) : kernel(std::move(name)), model([m retain]) {}
    ~ModelHandle() {
        Pool pool;
        NSError* error = nil;
        if (loaded && ![model unloadWithQoS:kQoS error:&error])
            log::warn("ane: kernel " + kernel + " did not unload: " + describe_error(error));
        [model release];
        std::error_code ec;
        if (!directory.empty()) std::filesystem::remove_all(directory, ec);
    }
    ModelHandle(const ModelHandle&) = delete;
    ModelHandle& operator=(const ModelHandle&) = delete;
};

class AppleProgram final : public CompiledProgram {
public:
    AppleProgram(const Framework& f, const mil::Kernel& kernel, std::unique_ptr<ModelHandle> model)
        : framework_(f), name_(kernel.name), input_bytes_(kernel.input_bytes()), model_(std::move(model)),
          output_(f, kernel.output_bytes(), kernel.name) {}

    std::unique_ptr<BoundInput> bind_input(const std::string& name) override {
        return std::make_unique<AppleInput>(framework_, input_bytes_, name, output_);
    }
    Surface& output() override { return output_; }
    void evaluate(BoundInput& input) override {
        Pool pool;
        auto& in = static_cast<AppleInput&>(input);
        NSError* error = nil;
        const BOOL ok = [model_->model evaluateWithQoS:kQoS options:[NSDictionary dictionary] request:in.request() error:&error];
        if (!ok) throw Error("ane: kernel " + in.kernel() + ": evaluation failed: " + describe_error(error));
    }

private:
    const Framework& framework_;
    std::string name_;
    std::size_t input_bytes_;
    std::unique_ptr<ModelHandle> model_;
    IoSurface output_;
};

int compile_limit_from_environment() {
    const char* text = std::getenv("ANE_COMPILE_LIMIT");
    if (!text || !*text) return 119;
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (*end || v < 0 || v > 1000000) throw Error(std::string("ANE_COMPILE_LIMIT=") + text + ": not a count (0: no limit)");
    return int(v);
}

int g_process_compiles = 0;  // the framework's limit is per process

class AppleRuntime final : public KernelRuntime {
public:
    explicit AppleRuntime(const std::string& path) : framework_(load_framework(path)), limit_(compile_limit_from_environment()) {}

    std::string name() const override { return "ane"; }
    std::string describe() const override { return "MIL programs on the Apple Neural Engine (" + framework_.path + ")"; }
    int process_compiles() const override { return g_process_compiles; }
    int compile_limit() const override { return limit_; }

    std::unique_ptr<CompiledProgram> compile(const mil::Kernel& kernel, mil::Program) override {
        if (limit_ > 0 && g_process_compiles >= limit_)
            throw Error("ane: kernel " + kernel.name + " would be compile " + std::to_string(g_process_compiles + 1) +
                        " of this process; the Neural Engine compiler is reported to fail silently after ~119 "
                        "(ANE_COMPILE_LIMIT=" + std::to_string(limit_) + "; run fewer kernels, e.g. --ane-mode matmul)");
        Pool pool;
        NSMutableDictionary* weights = [NSMutableDictionary dictionary];
        for (const auto& [path, blob] : kernel.blobs)
            [weights setObject:[NSDictionary dictionaryWithObjectsAndKeys:
                                   [NSNumber numberWithInt:0], @"offset",
                                   [NSData dataWithBytes:blob.data() length:blob.size()], @"data", nil]
                        forKey:[NSString stringWithUTF8String:path.c_str()]];
        NSData* text = [NSData dataWithBytes:kernel.text.data() length:kernel.text.size()];
        id descriptor = [framework_.descriptor_class modelWithMILText:text weights:weights optionsPlist:nil];
        if (descriptor == nil) throw Error("ane: kernel " + kernel.name + ": the framework refused its MIL text");
        id created = [framework_.model_class inMemoryModelWithDescriptor:descriptor];
        if (created == nil) throw Error("ane: kernel " + kernel.name + ": no in-memory model for its descriptor");
        auto handle = std::make_unique<ModelHandle>(kernel.name, created);
        id model = handle->model;
        handle->directory = model_directory(kernel, model);
        populate(kernel, handle->directory);
        NSError* error = nil;
        if (![model compileWithQoS:kQoS options:[NSDictionary dictionary] error:&error])
            throw Error("ane: kernel " + kernel.name + " failed to compile (compile " +
                        std::to_string(g_process_compiles + 1) + " of this process): " + describe_error(error));
        ++g_process_compiles;
        if (![model loadWithQoS:kQoS options:[NSDictionary dictionary] error:&error]) {
            log::warn("ane: kernel " + kernel.name + " did not load (" + describe_error(error) + "); retrying once");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            error = nil;
            if (![model loadWithQoS:kQoS options:[NSDictionary dictionary] error:&error])
                throw Error("ane: kernel " + kernel.name + " compiled but failed to load twice: " + describe_error(error));
        }
        handle->loaded = true;
        return std::make_unique<AppleProgram>(framework_, kernel, std::move(handle));
    }

private:
    const Framework& framework_;
    int limit_;

    static std::filesystem::path model_directory(const mil::Kernel& kernel, id model) {
        NSString* hex = [model hexStringIdentifier];
        if (hex == nil || [hex length] == 0) throw Error("ane: kernel " + kernel.name + ": the model has no identifier");
        return std::filesystem::path([NSTemporaryDirectory() UTF8String]) / [hex UTF8String];
    }

    // As the framework's own callers do before compiling: <tmp>/<hex>/model.mil and the weights
    // under <tmp>/<hex>/weights/.
    static void populate(const mil::Kernel& kernel, const std::filesystem::path& directory) {
        const auto write = [&](const std::filesystem::path& file, const void* data, std::size_t size) {
            std::filesystem::create_directories(file.parent_path());
            std::ofstream out(file, std::ios::binary | std::ios::trunc);
            out.write(static_cast<const char*>(data), std::streamsize(size));
            if (!out.flush()) throw Error("ane: kernel " + kernel.name + ": cannot write " + file.string());
        };
        write(directory / "model.mil", kernel.text.data(), kernel.text.size());
        const std::string prefix = "@model_path/";
        for (const auto& [path, blob] : kernel.blobs) {
            const std::string relative = path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
            write(directory / relative, blob.data(), blob.size());
        }
    }
};

}  // namespace

void probe_apple_runtime(const std::string& framework_path) { (void)load_framework(framework_path); }

std::unique_ptr<KernelRuntime> make_apple_runtime(const std::string& framework_path) {
    return std::make_unique<AppleRuntime>(framework_path);
}

}  // namespace ane
