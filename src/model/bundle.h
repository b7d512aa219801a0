/* bundle.h - TensorFlow tensor bundles: the variables.index table and the
 * variables.data-SSSSS-of-NNNNN shards it points into.
 *
 * bundle_read_index() reads and checks a whole index file (a LevelDB-format
 * table): the 48-byte footer and its magic, the index block, every data
 * block and the metaindex block, each block's trailer (compression type 0
 * none or 1 Snappy; masked CRC-32C of the stored contents and type byte),
 * the block entries (shared/non-shared key prefix compression, restart
 * array bounds, keys strictly ascending across the whole table), the header
 * entry (key "", BundleHeaderProto) and every other entry (BundleEntryProto:
 * dtype, shape, shard, offset, size, crc32c, slices).
 *
 * bundle_check_shards() then checks every entry against the data shards:
 * its bytes lie inside its shard and their CRC-32C matches the entry's.
 * Shards are read in bounded chunks (BUNDLE_READ_CHUNK bytes), so a
 * multi-gigabyte shard never sits in memory.
 *
 * Errors: a malformed or damaged file is a 400 "invalid_variables" whose
 * message names the file (by the display name the caller gives), what is
 * wrong, and how to fix it; a file that cannot be read at all is a 500
 * "internal_error" (logged with its path).  No exit, no abort, no recursion.
 */
#ifndef NNREG_MODEL_BUNDLE_H
#define NNREG_MODEL_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/error.h"

/* Limits on what an index may hold (files past them are refused). */
#define BUNDLE_MAX_INDEX_BYTES (64u << 20)         /* the index file */
#define BUNDLE_MAX_BLOCK_BYTES (64u << 20)         /* one block, uncompressed */
#define BUNDLE_MAX_UNCOMPRESSED_BYTES (256u << 20) /* all blocks, uncompressed */
#define BUNDLE_MAX_ENTRIES 1000000u                /* variables (and slices) */
#define BUNDLE_MAX_KEY_BYTES 65536u                /* one key (variable name) */
#define BUNDLE_MAX_DIMS 254u                       /* TensorFlow's own limit */
#define BUNDLE_MAX_SHARDS 99999u                   /* "-of-NNNNN" */
/* Size of the buffer shards are read through. */
#define BUNDLE_READ_CHUNK (1u << 20)

/* TensorFlow DataType values this module treats specially. */
#define BUNDLE_DT_STRING 7
#define BUNDLE_DT_VARIANT 21

/* The trailer type byte of a Snappy-compressed block. */
#define BUNDLE_BLOCK_SNAPPY 1

typedef struct bundle_entry {
    const char *name; /* the key, NUL-terminated; keys are bytes and may
                       * hold a NUL (slice keys do): name_len is exact */
    size_t name_len;
    int dtype;             /* TensorFlow DataType enum value (DT_FLOAT = 1) */
    const int64_t *dims;   /* ndims sizes, each >= 0 (NULL when ndims is 0) */
    size_t ndims;          /* 0 for a scalar */
    uint64_t num_elements; /* product of dims (1 for a scalar) */
    uint32_t shard_id;     /* < the index's num_shards */
    uint64_t offset;       /* in the shard; offset + size does not overflow */
    uint64_t size;         /* bytes in the shard */
    uint32_t crc32c;       /* as stored: masked CRC-32C (crc32c_unmask) */
    size_t nslices;        /* > 0: the full-tensor entry of a partitioned
                            * variable; its bytes are in the slice entries */
    bool slice_part;       /* the key encodes "variable + slice" (it starts
                            * with a NUL byte): one piece of a partitioned
                            * variable, not a variable of its own */
} bundle_entry_t;

typedef struct bundle_index {
    uint32_t num_shards;      /* from the header, 1 .. BUNDLE_MAX_SHARDS */
    bool big_endian;          /* header endianness BIG */
    int32_t version_producer; /* header VersionDef */
    int32_t version_min_consumer;
    size_t nentries; /* entries, header excluded, in key order */
    bundle_entry_t *entries;
    size_t data_blocks;   /* blocks of entries in the table */
    size_t snappy_blocks; /* how many of all blocks were Snappy-compressed */
} bundle_index_t;

/* Reads the tensor-bundle index at path into *out; display_name is how
 * messages call the file ("variables/variables.index").  Everything *out
 * points to is allocated from arena and lives as long as it.  false with
 * err filled when the file is malformed, damaged or unreadable. */
bool bundle_read_index(arena_t *arena, const char *path, const char *display_name,
                       bundle_index_t *out, nn_error_t *err) __attribute__((warn_unused_result));

/* The same on bytes already in memory (tests, fuzzing); data is not kept. */
bool bundle_parse_index(arena_t *arena, const void *data, size_t len, const char *display_name,
                        bundle_index_t *out, nn_error_t *err) __attribute__((warn_unused_result));

typedef struct bundle_check_stats {
    size_t entries_checked; /* entries whose bytes were verified */
    uint64_t bytes_checked; /* bytes read from the shards and checksummed */
} bundle_check_stats_t;

/* Checks every entry of index against the shard files: shard_paths[i] is
 * the file of shard i, shard_names[i] how messages call it (NULL for the
 * whole array: "variables.data-SSSSS-of-NNNNN").  nshards must equal
 * index->num_shards.  For each entry with data (not the full-tensor entry
 * of a partitioned variable): offset + size lies inside its shard, and the
 * CRC-32C of its bytes, computed as TensorFlow does (raw bytes for
 * fixed-size types; lengths, length checksum and bytes for strings;
 * per-element checksums for variants), equals the entry's.  Stops at the
 * first failure: err names the variable and the shard.  stats may be NULL.
 * Reads each shard once, in offset order, through one buffer of
 * BUNDLE_READ_CHUNK bytes that is freed before returning. */
bool bundle_check_shards(const bundle_index_t *index, const char *const *shard_paths,
                         const char *const *shard_names, size_t nshards,
                         bundle_check_stats_t *stats, nn_error_t *err)
    __attribute__((warn_unused_result));

/* Bytes per element of a fixed-size DataType; 0 for variable-size types
 * (string, variant, resource) and values this module does not know. */
size_t bundle_dtype_size(int dtype);

/* The entry with this key, or NULL (binary search). */
const bundle_entry_t *bundle_find(const bundle_index_t *index, const char *name);

/* The name of a variable fit for a message: printable ASCII kept, other
 * bytes as \xNN, cut with "..." to fit out_size (at least 8).  Returns out. */
const char *bundle_display_name(const char *name, size_t name_len, char *out, size_t out_size);

#endif
