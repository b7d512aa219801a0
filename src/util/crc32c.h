/* crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of LevelDB tables and TensorFlow tensor bundles.
 *
 * crc32c_extend() continues a checksum over more bytes, so that a file read
 * in chunks gives the same value as the whole buffer:
 *     crc32c_extend(crc32c_extend(0, a, na), b, nb) == crc32c_value(a ++ b)
 * It uses the SSE4.2 crc32 instruction when the CPU has it (x86-64 with GCC
 * or clang), and a slicing-by-8 table otherwise; both give the same value.
 * The tables are built once per process, on first use (thread-safe).
 *
 * LevelDB and TensorFlow store checksums "masked" (rotated right by 15 bits
 * plus a constant) so that the CRC of a string that contains CRCs is not
 * degenerate: crc32c_mask() gives the stored form, crc32c_unmask() undoes it.
 *
 * Nothing here fails or allocates.
 */
#ifndef NNREG_UTIL_CRC32C_H
#define NNREG_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of the bytes already summarized by crc (0 for none) followed
 * by len bytes at data (data may be NULL when len is 0). */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);

/* The CRC-32C of len bytes: crc32c_extend(0, data, len). */
static inline uint32_t crc32c_value(const void *data, size_t len)
{
    return crc32c_extend(0, data, len);
}

/* The table-driven implementation, whatever the CPU (for tests comparing
 * the two implementations). */
uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t len);

/* Whether crc32c_extend() uses the CPU's crc32 instruction. */
int crc32c_hardware(void);

#define CRC32C_MASK_DELTA 0xa282ead8u

/* The masked form of a CRC, as LevelDB and TensorFlow store it. */
static inline uint32_t crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + CRC32C_MASK_DELTA;
}

/* The CRC whose masked form is masked. */
static inline uint32_t crc32c_unmask(uint32_t masked)
{
    uint32_t rot = masked - CRC32C_MASK_DELTA;
    return (rot >> 17) | (rot << 15);
}

#endif
