/* simd.h - included first-thing by the files of hot loops (kernels.c,
 * conv.c) and nowhere else: the pragma applies to the file that includes
 * it.
 *
 * The loops there are written for the vectorizer: O3 lets it version loops
 * for aliasing (in-place kernels), and hot kernels are cloned for AVX2 and
 * AVX-512, picked at load time by the CPU (KERNEL_SIMD).  Not under clang
 * (the fuzz build) nor ASan, where the clones only cost build time. */
#ifndef NNREG_INFER_SIMD_H
#define NNREG_INFER_SIMD_H

#if !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define KERNEL_SIMD __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNEL_SIMD
#endif

#endif
