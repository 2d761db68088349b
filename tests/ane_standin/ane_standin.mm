// A stand-in for Apple's AppleNeuralEngine framework, for tests on Linux (GCC Objective-C++ and
// GNUstep Base): the four classes with the selectors the `ane` runtime sends, and the few
// IOSurface functions it calls. A compiled model runs its MIL through mil::Interpreter, so the
// `ane` device through this library must equal `ane-sim` bit for bit.
//
// It checks how it is used: surface memory is inaccessible (PROT_NONE) unless locked, read-only
// under a read-only lock, so a host access outside a lock crashes; an evaluation with a locked
// surface fails. Every call is appended to the file ANE_STANDIN_LOG names, and at exit a line
// `live descriptors=.. models=.. loaded=.. requests=.. objects=.. surfaces=..` counts what was
// never freed or unloaded. ANE_STANDIN_FAULT="compile@N,load@N,eval@N" fails the N-th such call
// (a load fails once: the runtime's retry succeeds).
#import <Foundation/Foundation.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "ane/mil/interpreter.hpp"

namespace {

FILE* log_file() {
    static FILE* f = [] {
        const char* path = std::getenv("ANE_STANDIN_LOG");
        return path && *path ? std::fopen(path, "a") : nullptr;
    }();
    return f;
}

void record(const std::string& line) {
    if (FILE* f = log_file()) std::fprintf(f, "%s\n", line.c_str());
}

void violation(const std::string& what) {
    record("violation " + what);
    std::fprintf(stderr, "ane-standin: violation: %s\n", what.c_str());
    if (FILE* f = log_file()) std::fflush(f);
}

struct Counters {
    int descriptors = 0, models = 0, loaded = 0, requests = 0, objects = 0, surfaces = 0;
    int compile_calls = 0, load_calls = 0, eval_calls = 0, serial = 0;
} g;

// The N-th call of a kind that fails (0: none), from ANE_STANDIN_FAULT.
int fault_at(const char* kind) {
    const char* spec = std::getenv("ANE_STANDIN_FAULT");
    if (!spec) return 0;
    const std::string text = spec, key = std::string(kind) + "@";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + key.size());
}

NSError* failure(NSInteger code, const std::string& what) {
    NSDictionary* info = [NSDictionary dictionaryWithObject:[NSString stringWithUTF8String:what.c_str()]
                                                     forKey:NSLocalizedDescriptionKey];
    return [NSError errorWithDomain:@"ANEStandIn" code:code userInfo:info];
}

std::string name_of(const char* prefix, int id) { return prefix + std::to_string(id); }

}  // namespace

// ---- IOSurface ---------------------------------------------------------------------------

// Named as IOSurfaceRef points to (struct __IOSurface*), so that the exported functions have
// exactly the types the runtime calls them through (UBSan's -fsanitize=function checks).
struct __IOSurface {
    int id = 0, refs = 1, lock = 0;  // lock: 0 none, 1 read-only, 2 read-write
    std::size_t bytes = 0, mapped = 0;
    void* memory = nullptr;
};
using StandInSurface = __IOSurface;

namespace {

void protect(StandInSurface* s, int prot) {
    if (mprotect(s->memory, s->mapped, prot) != 0) violation("mprotect failed on " + name_of("s", s->id));
}

long number(NSDictionary* d, const char* key) {
    id v = [d objectForKey:[NSString stringWithUTF8String:key]];
    return v ? [v longValue] : -1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) StandInSurface* IOSurfaceCreate(const void* properties) {
    NSDictionary* p = (NSDictionary*)properties;
    const long bytes = number(p, "IOSurfaceAllocSize");
    if (bytes <= 0 || number(p, "IOSurfaceWidth") != bytes || number(p, "IOSurfaceHeight") != 1 ||
        number(p, "IOSurfaceBytesPerElement") != 1 || number(p, "IOSurfaceBytesPerRow") != bytes ||
        number(p, "IOSurfacePixelFormat") != 0) {
        violation("IOSurfaceCreate with properties other than spec/ane.md §2's");
        return nullptr;
    }
    auto* s = new StandInSurface;
    s->id = ++g.serial;
    s->bytes = std::size_t(bytes);
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    s->mapped = (s->bytes + page - 1) / page * page;
    s->memory = mmap(nullptr, s->mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->memory == MAP_FAILED) {
        delete s;
        return nullptr;
    }
    ++g.surfaces;
    record("surface " + name_of("s", s->id) + " create " + std::to_string(bytes));
    return s;
}

__attribute__((visibility("default"))) int IOSurfaceLock(StandInSurface* s, std::uint32_t options, std::uint32_t*) {
    if (s->lock) {
        violation("IOSurfaceLock of " + name_of("s", s->id) + ", already locked");
        return 1;
    }
    s->lock = options & 1 ? 1 : 2;
    protect(s, s->lock == 1 ? PROT_READ : PROT_READ | PROT_WRITE);
    record("lock " + name_of("s", s->id) + (s->lock == 1 ? " ro" : " rw"));
    return 0;
}

__attribute__((visibility("default"))) int IOSurfaceUnlock(StandInSurface* s, std::uint32_t options, std::uint32_t*) {
    if (!s->lock || (s->lock == 1) != ((options & 1) != 0)) {
        violation("IOSurfaceUnlock of " + name_of("s", s->id) + " not matching its lock");
        return 1;
    }
    s->lock = 0;
    protect(s, PROT_NONE);
    record("unlock " + name_of("s", s->id));
    return 0;
}

__attribute__((visibility("default"))) void* IOSurfaceGetBaseAddress(StandInSurface* s) { return s->memory; }
__attribute__((visibility("default"))) std::size_t IOSurfaceGetAllocSize(StandInSurface* s) { return s->bytes; }

__attribute__((visibility("default"))) void CFRetain(const void* object) {
    ++static_cast<StandInSurface*>(const_cast<void*>(object))->refs;
}

__attribute__((visibility("default"))) void CFRelease(const void* object) {
    auto* s = static_cast<StandInSurface*>(const_cast<void*>(object));
    if (--s->refs > 0) return;
    if (s->lock) violation("surface " + name_of("s", s->id) + " freed while locked");
    record("free " + name_of("s", s->id));
    munmap(s->memory, s->mapped);
    --g.surfaces;
    delete s;
}

}  // extern "C"

// ---- The four classes --------------------------------------------------------------------

@interface _ANEInMemoryModelDescriptor : NSObject {
@public
    int ident;
    NSData* text;
    NSDictionary* weights;
}
+ (id)modelWithMILText:(NSData*)text weights:(NSDictionary*)weights optionsPlist:(NSDictionary*)options;
@end

@implementation _ANEInMemoryModelDescriptor
+ (id)modelWithMILText:(NSData*)milText weights:(NSDictionary*)blobs optionsPlist:(NSDictionary*)options {
    (void)options;
    _ANEInMemoryModelDescriptor* d = [[[_ANEInMemoryModelDescriptor alloc] init] autorelease];
    d->ident = ++g.serial;
    d->text = [milText retain];
    d->weights = [blobs retain];
    ++g.descriptors;
    record("descriptor " + name_of("d", d->ident) + " text " + std::to_string([milText length]) + " weights " +
           std::to_string([blobs count]));
    return d;
}
- (void)dealloc {
    record("free " + name_of("d", ident));
    --g.descriptors;
    [text release];
    [weights release];
    [super dealloc];
}
@end

@interface _ANEIOSurfaceObject : NSObject {
@public
    int ident;
    StandInSurface* surface;
}
+ (id)objectWithIOSurface:(StandInSurface*)surface;
@end

@implementation _ANEIOSurfaceObject
+ (id)objectWithIOSurface:(StandInSurface*)s {
    _ANEIOSurfaceObject* o = [[[_ANEIOSurfaceObject alloc] init] autorelease];
    o->ident = ++g.serial;
    o->surface = s;
    CFRetain(s);
    ++g.objects;
    record("object " + name_of("o", o->ident) + " " + name_of("s", s->id));
    return o;
}
- (void)dealloc {
    record("free " + name_of("o", ident));
    --g.objects;
    CFRelease(surface);
    [super dealloc];
}
@end

@interface _ANERequest : NSObject {
@public
    int ident;
    NSArray* inputs;
    NSArray* outputs;
}
+ (id)requestWithInputs:(NSArray*)inputs
           inputIndices:(NSArray*)inputIndices
                outputs:(NSArray*)outputs
          outputIndices:(NSArray*)outputIndices
          weightsBuffer:(id)weightsBuffer
              perfStats:(id)perfStats
         procedureIndex:(NSNumber*)procedureIndex;
@end

@implementation _ANERequest
+ (id)requestWithInputs:(NSArray*)ins
           inputIndices:(NSArray*)inputIndices
                outputs:(NSArray*)outs
          outputIndices:(NSArray*)outputIndices
          weightsBuffer:(id)weightsBuffer
              perfStats:(id)perfStats
         procedureIndex:(NSNumber*)procedureIndex {
    // One input and one output surface at index 0 (spec §7: multi-input requests fail).
    if ([ins count] != 1 || [outs count] != 1 || [inputIndices count] != 1 || [outputIndices count] != 1 ||
        [[inputIndices objectAtIndex:0] intValue] != 0 || [[outputIndices objectAtIndex:0] intValue] != 0 ||
        weightsBuffer != nil || perfStats != nil || [procedureIndex intValue] != 0) {
        violation("a request other than one input and one output at index 0");
        return nil;
    }
    _ANERequest* r = [[[_ANERequest alloc] init] autorelease];
    r->ident = ++g.serial;
    r->inputs = [ins retain];
    r->outputs = [outs retain];
    ++g.requests;
    _ANEIOSurfaceObject* in = [ins objectAtIndex:0];
    _ANEIOSurfaceObject* out = [outs objectAtIndex:0];
    record("request " + name_of("r", r->ident) + " in " + name_of("s", in->surface->id) + " out " +
           name_of("s", out->surface->id));
    return r;
}
- (void)dealloc {
    record("free " + name_of("r", ident));
    --g.requests;
    [inputs release];
    [outputs release];
    [super dealloc];
}
@end

@interface _ANEInMemoryModel : NSObject {
@public
    int ident;
    _ANEInMemoryModelDescriptor* descriptor;
    ane::mil::Interpreter* program;
    BOOL loaded;
}
+ (id)inMemoryModelWithDescriptor:(id)descriptor;
- (NSString*)hexStringIdentifier;
- (BOOL)compileWithQoS:(unsigned int)qos options:(NSDictionary*)options error:(NSError**)error;
- (BOOL)loadWithQoS:(unsigned int)qos options:(NSDictionary*)options error:(NSError**)error;
- (BOOL)evaluateWithQoS:(unsigned int)qos options:(NSDictionary*)options request:(id)request error:(NSError**)error;
- (BOOL)unloadWithQoS:(unsigned int)qos error:(NSError**)error;
@end

@implementation _ANEInMemoryModel
+ (id)inMemoryModelWithDescriptor:(id)d {
    _ANEInMemoryModel* m = [[[_ANEInMemoryModel alloc] init] autorelease];
    m->ident = ++g.serial;
    m->descriptor = [d retain];
    ++g.models;
    record("model " + name_of("m", m->ident) + " " + name_of("d", m->descriptor->ident));
    return m;
}

- (NSString*)hexStringIdentifier {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the text and every weight
    const auto mix = [&](const void* data, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const std::uint8_t*>(data)[i]) * 1099511628211ull;
    };
    mix([descriptor->text bytes], [descriptor->text length]);
    NSArray* keys = [descriptor->weights allKeys];
    keys = [keys sortedArrayUsingSelector:@selector(compare:)];
    for (NSUInteger i = 0; i < [keys count]; ++i) {  // (GCC's Objective-C++ has no for-in)
        NSString* key = [keys objectAtIndex:i];
        mix([key UTF8String], std::strlen([key UTF8String]));
        NSData* data = [[descriptor->weights objectForKey:key] objectForKey:@"data"];
        mix([data bytes], [data length]);
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return [NSString stringWithUTF8String:hex];
}

- (BOOL)compileWithQoS:(unsigned int)qos options:(NSDictionary*)options error:(NSError**)error {
    (void)options;
    const int call = ++g.compile_calls;
    const std::string hex = [[self hexStringIdentifier] UTF8String];
    const std::string text(static_cast<const char*>([descriptor->text bytes]), [descriptor->text length]);
    std::string why;
    if (qos != 21) why = "QoS " + std::to_string(qos);
    if (program) why = "compiled twice";
    // The caller writes the program into the model's directory before compiling.
    std::ifstream mil(std::string([NSTemporaryDirectory() UTF8String]) + "/" + hex + "/model.mil", std::ios::binary);
    std::stringstream on_disk;
    on_disk << mil.rdbuf();
    if (why.empty() && on_disk.str() != text) why = "model.mil not in its directory";
    if (!why.empty()) violation("compile " + name_of("m", ident) + ": " + why);
    ane::mil::BlobMap blobs;
    NSArray* keys = [descriptor->weights allKeys];
    for (NSUInteger i = 0; i < [keys count]; ++i) {
        NSString* key = [keys objectAtIndex:i];
        NSData* data = [[descriptor->weights objectForKey:key] objectForKey:@"data"];
        const auto* bytes = static_cast<const std::uint8_t*>([data bytes]);
        const std::string path = [key UTF8String];
        blobs[path].assign(bytes, bytes + [data length]);
    }
    if (why.empty() && call == fault_at("compile")) why = "injected compile failure";
    if (why.empty()) {
        try {
            program = new ane::mil::Interpreter(ane::mil::parse_program(text, blobs));
        } catch (const std::exception& e) {
            why = e.what();
        }
    }
    record("compile " + name_of("m", ident) + " " + hex + (why.empty() ? " ok" : " fail"));
    if (!why.empty() && error) *error = failure(1, why);
    return why.empty();
}

- (BOOL)loadWithQoS:(unsigned int)qos options:(NSDictionary*)options error:(NSError**)error {
    (void)options;
    const int call = ++g.load_calls;
    const bool ok = program && !loaded && qos == 21 && call != fault_at("load");
    record("load " + name_of("m", ident) + (ok ? " ok" : " fail"));
    if (!ok) {
        if (error) *error = failure(2, program ? "injected load failure" : "load before compile");
        return NO;
    }
    loaded = YES;
    ++g.loaded;
    return YES;
}

- (BOOL)evaluateWithQoS:(unsigned int)qos options:(NSDictionary*)options request:(id)request error:(NSError**)error {
    (void)options;
    const int call = ++g.eval_calls;
    _ANERequest* r = request;
    StandInSurface* in = ((_ANEIOSurfaceObject*)[r->inputs objectAtIndex:0])->surface;
    StandInSurface* out = ((_ANEIOSurfaceObject*)[r->outputs objectAtIndex:0])->surface;
    std::string why;
    if (!loaded || qos != 21) why = "evaluation of a model not loaded";
    else if (in->lock || out->lock) why = "evaluation while the host holds a surface lock";
    else if (in->bytes < 2 * std::size_t(program->input_type().numel()) ||
             out->bytes < 2 * std::size_t(program->output_type().numel()))
        why = "surfaces smaller than the program's tensors";
    if (!why.empty()) violation("eval " + name_of("m", ident) + ": " + why);
    else if (call == fault_at("eval")) why = "injected evaluation failure";
    record("eval " + name_of("m", ident) + " " + name_of("r", r->ident) + (why.empty() ? " ok" : " fail"));
    if (!why.empty()) {
        if (error) *error = failure(3, why);
        return NO;
    }
    protect(in, PROT_READ);
    protect(out, PROT_READ | PROT_WRITE);
    program->run(static_cast<const std::uint16_t*>(in->memory), static_cast<std::uint16_t*>(out->memory));
    protect(in, PROT_NONE);
    protect(out, PROT_NONE);
    return YES;
}

- (BOOL)unloadWithQoS:(unsigned int)qos error:(NSError**)error {
    (void)qos;
    (void)error;
    record("unload " + name_of("m", ident) + (loaded ? " ok" : " fail"));
    if (!loaded) return NO;
    loaded = NO;
    --g.loaded;
    return YES;
}

- (void)dealloc {
    if (loaded) violation("model " + name_of("m", ident) + " freed while loaded");
    record("free " + name_of("m", ident));
    --g.models;
    delete program;
    [descriptor release];
    [super dealloc];
}
@end

__attribute__((destructor)) static void report_live_objects() {
    record("live descriptors=" + std::to_string(g.descriptors) + " models=" + std::to_string(g.models) +
           " loaded=" + std::to_string(g.loaded) + " requests=" + std::to_string(g.requests) +
           " objects=" + std::to_string(g.objects) + " surfaces=" + std::to_string(g.surfaces));
    if (FILE* f = log_file()) std::fflush(f);
}
