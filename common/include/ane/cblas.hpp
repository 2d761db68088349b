#pragma once
// The CBLAS the build chose: OpenBLAS (Linux, the default), or Accelerate on Apple.
#if defined(ANE_BLAS_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif
