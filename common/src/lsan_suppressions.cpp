// Compiled into every executable of a sanitizer build that links GNUstep: the Objective-C
// runtime and GNUstep Base keep their class tables until exit, which LeakSanitizer would
// report as leaks of every process. Objects of our own are counted by the stand-in instead.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libobjc.so\nleak:libgnustep-base.so\n";
}

// Without the report of which suppressions matched: the tools' stderr is what tests compare.
extern "C" const char* __lsan_default_options() { return "print_suppressions=0"; }
