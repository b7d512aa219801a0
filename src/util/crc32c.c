/* crc32c.c - CRC-32C: see crc32c.h.
 *
 * Slicing-by-8: table[0] is the classic byte-at-a-time table of the
 * reflected polynomial; table[k][b] is the CRC of byte b followed by k zero
 * bytes, so eight bytes are folded in with eight lookups.  On x86-64 the
 * SSE4.2 crc32 instruction computes the same function (same polynomial,
 * same bit order, same pre/post inversion done here). */
#include "util/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static bool use_hardware;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_X86 1
#endif

static void crc32c_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            crc_table[k][b] = (crc_table[k - 1][b] >> 8) ^ crc_table[0][crc_table[k - 1][b] & 0xff];
#ifdef CRC32C_HAVE_X86
    __builtin_cpu_init();
    use_hardware = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The inner loop on the inverted state. */
static uint32_t crc_sw(uint32_t c, const unsigned char *p, size_t len)
{
    /* Byte by byte up to an 8-byte boundary, so the wide loads are aligned
     * (not needed for correctness: the loads are byte-wise). */
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint32_t lo = load_le32(p) ^ c;
        uint32_t hi = load_le32(p + 4);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
            crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
        len--;
    }
    return c;
}

#ifdef CRC32C_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p,
                                                         size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi(c, *p++);
        len--;
    }
    unsigned long long c64 = c;
    while (len >= 8) {
        unsigned long long v;
        memcpy(&v, p, 8); /* x86 is little-endian, as the instruction expects */
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len > 0) {
        c = __builtin_ia32_crc32qi(c, *p++);
        len--;
    }
    return c;
}
#endif

uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&init_once, crc32c_init);
    if (len == 0)
        return crc;
    return ~crc_sw(~crc, data, len);
}

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&init_once, crc32c_init);
    if (len == 0)
        return crc;
#ifdef CRC32C_HAVE_X86
    if (use_hardware)
        return ~crc_hw(~crc, data, len);
#endif
    return ~crc_sw(~crc, data, len);
}

int crc32c_hardware(void)
{
    pthread_once(&init_once, crc32c_init);
    return use_hardware ? 1 : 0;
}
