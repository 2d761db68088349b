# The `ane` device's runtime is Objective-C++ (common/src/device/ane/apple/). On Apple it is
# compiled with Foundation and IOSurface; elsewhere with GNUstep Base and GCC's Objective-C
# runtime (Debian: gobjc++, libgnustep-base-dev), by GCC or by clang for that runtime (the
# sanitizer build), which is how the tests run it against the stand-in framework. Without
# either, `--device ane` is refused as on a machine without the framework.
# Sets ANE_HAVE_OBJC, ANE_OBJC_FLAGS (compile options for .mm files) and ANE_OBJC_LIBS.
set(ANE_HAVE_OBJC OFF)
set(ANE_OBJC_FLAGS "")
set(ANE_OBJC_LIBS "")

if(ANE_OBJC)
  if(APPLE)
    set(ANE_HAVE_OBJC ON)
    set(ANE_OBJC_FLAGS -x objective-c++ -fno-objc-arc)
    set(ANE_OBJC_LIBS "-framework Foundation" "-framework IOSurface" "-framework CoreFoundation")
  elseif(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    find_program(GNUSTEP_CONFIG gnustep-config)
    find_library(GNUSTEP_BASE_LIBRARY gnustep-base)
    find_library(OBJC_LIBRARY NAMES objc libobjc.so.4)
    if(GNUSTEP_CONFIG AND GNUSTEP_BASE_LIBRARY AND OBJC_LIBRARY)
      execute_process(COMMAND ${GNUSTEP_CONFIG} --objc-flags OUTPUT_VARIABLE _gs_flags
                      OUTPUT_STRIP_TRAILING_WHITESPACE)
      separate_arguments(_gs_flags UNIX_COMMAND "${_gs_flags}")
      set(_flags -x objective-c++)
      if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
        # GNUstep on Debian is built on GCC's runtime (libobjc4), whose objc/*.h live in GCC's
        # own include directory: only that subdirectory is linked in (GCC's stddef.h and
        # intrinsics headers must not shadow clang's).
        execute_process(COMMAND gcc -print-file-name=include OUTPUT_VARIABLE _gcc_include
                        OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        list(APPEND _flags -fobjc-runtime=gcc)
        if(IS_DIRECTORY "${_gcc_include}/objc")
          file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/objc_runtime_include)
          file(CREATE_LINK "${_gcc_include}/objc" ${CMAKE_BINARY_DIR}/objc_runtime_include/objc SYMBOLIC)
          list(APPEND _flags -isystem ${CMAKE_BINARY_DIR}/objc_runtime_include)
        endif()
      endif()
      foreach(f IN LISTS _gs_flags)
        # Its defines, the constant-string class and exceptions; its headers as system headers
        # (they do not build warning-free).
        if(f MATCHES "^-D" OR f MATCHES "^-fconstant-string-class" OR f STREQUAL "-fobjc-exceptions")
          list(APPEND _flags ${f})
        elseif(f MATCHES "^-I(.+)$")
          if(IS_DIRECTORY "${CMAKE_MATCH_1}")
            list(APPEND _flags -isystem "${CMAKE_MATCH_1}")
          endif()
        endif()
      endforeach()
      # gobjc++ provides the compiler proper (cc1objplus); g++ alone cannot compile .mm.
      file(WRITE ${CMAKE_BINARY_DIR}/objc_probe.mm "#import <Foundation/Foundation.h>\nint main(){NSAutoreleasePool* p=[[NSAutoreleasePool alloc] init];[p drain];return 0;}\n")
      execute_process(COMMAND ${CMAKE_CXX_COMPILER} ${_flags} -fsyntax-only ${CMAKE_BINARY_DIR}/objc_probe.mm
                      RESULT_VARIABLE _probe ERROR_VARIABLE _probe_err OUTPUT_QUIET)
      if(_probe EQUAL 0)
        set(ANE_HAVE_OBJC ON)
        set(ANE_OBJC_FLAGS ${_flags})
        set(ANE_OBJC_LIBS ${GNUSTEP_BASE_LIBRARY} ${OBJC_LIBRARY} ${CMAKE_DL_LIBS})
      else()
        message(STATUS "Objective-C++: ${CMAKE_CXX_COMPILER} cannot compile it (install gobjc++): ${_probe_err}")
      endif()
    else()
      message(STATUS "Objective-C++: GNUstep Base not found (install gobjc++ libgnustep-base-dev)")
    endif()
  endif()
endif()
message(STATUS "Neural Engine runtime (--device ane): ${ANE_HAVE_OBJC}")
