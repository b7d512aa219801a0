/* npy.h - mean files: NumPy .npy arrays and Caffe .binaryproto blobs.
 *
 * npy_parse_header() reads the header of a .npy file: the magic
 * "\x93NUMPY", format version 1.0, 2.0 or 3.0, the header length (2 bytes
 * in 1.0, 4 bytes after), and the header itself: a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (224, 224, 3), } that
 * is parsed as data, never evaluated.  'descr' must be a plain numeric type
 * (b i u f c with a byte order and size, e.g. '<f4', '<f8', '|u1');
 * structured, object, string and datetime arrays are refused, and so is
 * fortran_order True.  npy_check_file() / npy_parse() also check that the
 * data that follows is exactly product(shape) * itemsize bytes.
 *
 * npy_parse_blobproto() reads a Caffe BlobProto (the .binaryproto mean
 * files of Caffe): shape from BlobShape (field 7) or the legacy num,
 * channels, height, width (fields 1-4), and the count of its float data
 * (field 5) or double data (field 8), packed or not, which must equal the
 * shape's element count.
 *
 * npy_mean_fits() says whether a mean of a given shape can be subtracted
 * from the images an input receives.
 *
 * Errors: a malformed file is a 400 "invalid_mean_file" whose message names
 * the file and the fix; an unreadable one a 500 "internal_error".  Nothing
 * here allocates beyond what it reads (bounded by NPY_MAX_BLOBPROTO_BYTES
 * and NPY_MAX_HEADER_BYTES); no recursion; no exit/abort.
 */
#ifndef NNREG_MODEL_NPY_H
#define NNREG_MODEL_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define NPY_MAX_DIMS 32                      /* NumPy's NPY_MAXDIMS (1.x) */
#define NPY_MAX_HEADER_BYTES (1u << 20)      /* the dict literal */
#define NPY_MAX_BLOBPROTO_BYTES (256u << 20) /* a whole .binaryproto */

typedef struct npy_info {
    char byte_order; /* '<' little, '>' big, '|' not applicable */
    char kind;       /* 'b' bool, 'i' int, 'u' unsigned, 'f' float, 'c' complex */
    size_t itemsize; /* bytes per element (1, 2, 4, 8 or 16) */
    char descr[8];   /* normalized, e.g. "<f4", "|u1" */
    size_t ndims;    /* 0 for a scalar */
    int64_t shape[NPY_MAX_DIMS];
    uint64_t count;       /* product of shape (1 for a scalar) */
    uint64_t data_offset; /* where the data starts in the file */
    uint64_t data_bytes;  /* count * itemsize */
    int version_major;    /* 1, 2 or 3; 0 for a .binaryproto */
    int version_minor;
} npy_info_t;

/* Parses the header at the start of data (len bytes: the whole file or at
 * least its header).  Fills *out (data_offset: where the data starts) and
 * does not look at the data.  display_name names the file in messages. */
bool npy_parse_header(const void *data, size_t len, const char *display_name, npy_info_t *out,
                      nn_error_t *err) __attribute__((warn_unused_result));

/* A whole .npy file in memory: the header, and the data length. */
bool npy_parse(const void *data, size_t len, const char *display_name, npy_info_t *out,
               nn_error_t *err) __attribute__((warn_unused_result));

/* A Caffe BlobProto (.binaryproto) in memory.  out->kind is 'f', itemsize
 * 4 (float data) or 8 (double data), byte_order '<'; data_offset 0 and
 * data_bytes count * itemsize (the values themselves are not located). */
bool npy_parse_blobproto(const void *data, size_t len, const char *display_name, npy_info_t *out,
                         nn_error_t *err) __attribute__((warn_unused_result));

/* Reads the mean file at path: a .binaryproto when display_name (or path)
 * ends in ".binaryproto", a .npy otherwise.  A .npy is not read whole: only
 * its header, and its size is compared with what the header needs. */
bool npy_check_file(const char *path, const char *display_name, npy_info_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

typedef enum {
    NPY_MEAN_NO_FIT = 0,
    NPY_MEAN_PER_CHANNEL, /* (C,) */
    NPY_MEAN_HWC,         /* (H, W, C) */
    NPY_MEAN_CHW,         /* (C, H, W) */
    NPY_MEAN_WHC,         /* (W, H, C) */
    NPY_MEAN_CWH,         /* (C, W, H) */
} npy_mean_layout_t;

/* How a mean of this shape fits an input of `channels` channels (3 for RGB
 * or BGR, 1 for L) resized to width x height: per channel (C,), or one
 * value per pixel and channel in one of the four layouts above.  Leading
 * dimensions of size 1 are ignored (a Caffe mean is (1, C, H, W)).  width
 * and height 0 mean the size is not fixed (resize_type NETWORK): then only a
 * per-channel mean fits.  When it does not fit, why (if not NULL) receives
 * a message such as "has shape (256, 256, 3) but the input takes 3
 * channels at 224x224: ...". */
npy_mean_layout_t npy_mean_fits(const int64_t *shape, size_t ndims, unsigned channels,
                                unsigned width, unsigned height, char *why, size_t why_size);

/* "(224, 224, 3)" into buf; returns buf. */
const char *npy_shape_string(const int64_t *shape, size_t ndims, char *buf, size_t size);

#endif
