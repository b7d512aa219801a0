/* migrate.h - applies the numbered SQL migrations (sql/NNN_name.sql) in
 * order, each in its own transaction together with its row in
 * nnreg_migrations(version, name, applied_at), under an advisory lock so
 * that two hosts migrating at once do not collide.  Already applied
 * versions are skipped; a file whose version is recorded under another name
 * is an error. */
#ifndef NNREG_DB_MIGRATE_H
#define NNREG_DB_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

/* Applies pending migrations from sql_dir; writes one line per applied
 * migration to log (may be NULL).  false with errbuf filled. */
bool migrate_apply(PGconn *conn, const char *sql_dir, FILE *log, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

#endif
