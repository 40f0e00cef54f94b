// PLATOON_VECTOR_LOOP marks a hot element-wise loop over floats (a sync rule,
// a reduction, an update rule) for runtime dispatch.
//
// The libraries are built for the baseline CPU by default, so that an
// installed platoon runs on any x86-64 (PLATOON_NATIVE_ARCH=ON tunes them for
// the build machine instead). The baseline's SSE2 loses up to 2.4x against
// AVX-512 on loops that run from cache, so on x86-64 each marked loop is also
// compiled for AVX-512 and AVX2, and the best version for the CPU is picked
// when the program loads (GCC's target_clones, an ifunc). Sanitizer and clang
// builds keep one version.
#pragma once

#if defined(__x86_64__) && defined(__gnu_linux__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define PLATOON_VECTOR_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PLATOON_VECTOR_LOOP
#endif
