/* filetype.h - what an uploaded file really is, with libmagic.
 *
 * The system magic database calls every real SavedModel a "PDP-11 pure
 * executable" (it starts with 08 01) and variables.index "LevelDB table
 * data"; the project ships its own magic file (src/store/nnreg.magic,
 * compiled at build time) naming the TensorFlow formats with a higher
 * strength, loaded together with the system database.  The decision is then
 * taken from libmagic's description and MIME type plus a few structural
 * checks (a PNG, ZIP, ELF, HTML, gzip, PDF, or empty file posing as a model
 * file is refused whatever its name says).
 *
 * The checker (a magic_t) is process-lifetime: open once per worker.
 */
#ifndef NNREG_STORE_FILETYPE_H
#define NNREG_STORE_FILETYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"

typedef enum {
    FILE_KIND_SAVED_MODEL_PB,    /* saved_model.pb: binary protobuf */
    FILE_KIND_SAVED_MODEL_PBTXT, /* saved_model.pbtxt: UTF-8 protobuf text */
    FILE_KIND_VARIABLES_INDEX,   /* variables.index: table ending in the magic */
    FILE_KIND_VARIABLES_DATA,    /* variables.data-SSSSS-of-NNNNN: raw bytes */
    FILE_KIND_MEAN_NPY,          /* *.npy: NumPy array file */
    FILE_KIND_MEAN_BINARYPROTO,  /* *.binaryproto: Caffe BlobProto */
} file_kind_t;

typedef struct filetype_checker filetype_checker_t;

/* Loads the system database plus project_magic (a compiled .mgc; may be
 * NULL to use only the system database).  NULL with errbuf filled. */
filetype_checker_t *filetype_open(const char *project_magic, char *errbuf, size_t errlen);
void filetype_close(filetype_checker_t *checker);

/* Checks the file at path, uploaded as display_name, against kind.  On
 * success *detected is a short type description (arena memory) reported in
 * the network's files[] ("tensorflow saved model (binary protobuf)", ...).
 * On mismatch: 400 "file_type_mismatch" naming display_name and what it
 * looks like instead; an empty file is 400 "empty_file". */
bool filetype_check(filetype_checker_t *checker, arena_t *arena, const char *path,
                    file_kind_t kind, const char *display_name, const char **detected,
                    nn_error_t *err) __attribute__((warn_unused_result));

/* The kind a file part name calls for: saved_model.pb, saved_model.pbtxt,
 * variables.index, variables.data-SSSSS-of-NNNNN (5 digits each, S < N),
 * *.npy, *.binaryproto.  false for any other name. */
bool filetype_kind_for_name(const char *name, file_kind_t *kind);

#endif
