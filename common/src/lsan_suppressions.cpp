// Compiled into every executable of a sanitizer build that links GNUstep or MPI: the
// Objective-C runtime and GNUstep Base keep their class tables until exit, and Open MPI its
// component registries past MPI_Finalize, which LeakSanitizer would report as leaks of every
// process. Objects of our own are counted by the stand-in instead.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libobjc.so\nleak:libgnustep-base.so\nleak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\n"
           "leak:libpmix.so\nleak:libhwloc.so\nleak:libevent\nleak:mca_\n";
}

// Without the report of which suppressions matched: the tools' stderr is what tests compare.
extern "C" const char* __lsan_default_options() { return "print_suppressions=0"; }
