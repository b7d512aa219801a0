/* statements.c - every SQL statement the FastCGI workers run, prepared on
 * each new connection.  Network and task objects are built by the SQL
 * functions nnreg_network_object / nnreg_task_json (sql/), so a route
 * answers in one round trip with one shape. */
#include "api/api.h"

/* The network object of API.md for the row n (an alias or a row
 * expression): sql/004_perf_indexes.sql says why the files are selected
 * here rather than inside a function. */
#define NETWORK_JSON(n)                                                                       \
    "nnreg_network_object(" n ", (SELECT json_agg(nnreg_file_json(f) ORDER BY f.position) "   \
    "FROM network_files f WHERE f.network_id = (" n ").id))"

/* Visibility of a network to organization $2 (own or public). */
#define VISIBLE_NETWORK "(n.org_id = $2 OR n.is_public)"

/* Network lists, one statement per ordering (ORDER BY cannot be a
 * parameter), in two forms:
 *   network_list_ORDER           $1 org, $2 limit, $3 offset: no filter
 *   network_list_ORDER_filtered  $1 org, $2 name substring pattern or
 *                                NULL, $3 is_public or NULL, $4 limit,
 *                                $5 offset
 * The unfiltered form is the common one and has a plan of its own: with
 * the filters as parameters a generic plan would have to fetch every row
 * it skips to test them.
 *
 * What a caller sees is two disjoint sets: its own networks, and the public
 * networks of other organizations.  Each is read in the list's order from
 * an index (sql/004_perf_indexes.sql) that holds the sort keys, so an
 * offset is skipped in the index alone (index-only scans); the planner
 * merges the two (Merge Append), and only the page's rows are read from the
 * table.  A page thus costs offset + limit index entries whatever the table
 * holds, instead of a sort of everything visible.  (Each half is limited
 * to offset + limit and the union sorted: PostgreSQL does not merge the
 * halves of a UNION ALL in order by itself, it sorted all of them.)  The count comes from the
 * counters of network_counts, exact and O(organizations); only a name
 * filter needs a real count. */
#define LIST_FILTER                                                                           \
    " AND ($2::text IS NULL OR n.name ILIKE $2) AND ($3::boolean IS NULL OR n.is_public = $3)"
#define LIST_PAGE(keys, order, vorder, filter, limit, offset)                                \
    "COALESCE((SELECT json_agg(" NETWORK_JSON("n") " ORDER BY " vorder ") FROM "             \
    "(SELECT * FROM ((SELECT " keys " FROM networks n WHERE n.org_id = $1" filter            \
    " ORDER BY " order " LIMIT " limit "::bigint + " offset "::bigint) UNION ALL (SELECT "  \
    keys " FROM networks n WHERE n.is_public AND n.org_id <> $1" filter " ORDER BY " order   \
    " LIMIT " limit "::bigint + " offset "::bigint)) v ORDER BY " order " LIMIT " limit      \
    " OFFSET " offset ") v JOIN networks n ON n.id = v.id), '[]'::json)::text"
#define NETWORK_LIST(stmt, keys, order, vorder)                                               \
    {stmt, "SELECT nnreg_network_count($1, NULL), "                                           \
     LIST_PAGE(keys, order, vorder, "", "$2", "$3"), 3, DB_RETRY_SAFE},                       \
    {stmt "_filtered",                                                                        \
     "SELECT CASE WHEN $2::text IS NULL THEN nnreg_network_count($1, $3::boolean) "           \
     "ELSE (SELECT count(*) FROM networks n WHERE (n.org_id = $1 OR n.is_public)" LIST_FILTER \
     ") END, " LIST_PAGE(keys, order, vorder, LIST_FILTER, "$4", "$5"),                       \
     5, DB_RETRY_SAFE}

/* Tasks visible to organization $2: its own, and the deployments of public
 * networks.  An inference task is its sender's alone, whatever network it
 * ran on: its images and results belong to the organization that sent
 * them, not to everyone who may read the public network. */
#define VISIBLE_TASK                                                                          \
    "(t.org_id = $2 OR (t.kind = 'deploy' AND EXISTS (SELECT 1 FROM networks n "            \
    "WHERE n.id = t.network_id AND n.is_public)))"

const db_statement_t api_statements[] = {
    {"health", "SELECT 1", 0, DB_RETRY_SAFE},
    {"auth_key",
     "SELECT k.org_id, k.app_id, k.key_hash FROM api_keys k "
     "WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
     1, DB_RETRY_SAFE},

    /* The hot reads authenticate in their own statement (api_auth_exec):
     * $1 the key's hash, $2 the id; the key's row, with the object (or
     * NULLs when it does not exist or is not visible). */
    {"network_get_auth",
     "SELECT k.org_id, k.app_id, k.key_hash, j.body, j.version FROM api_keys k "
     "LEFT JOIN LATERAL (SELECT " NETWORK_JSON("n") "::text AS body, n.version FROM networks n "
     "WHERE n.id = $2 AND (n.org_id = k.org_id OR n.is_public)) j ON true "
     "WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
     2, DB_RETRY_SAFE},
    {"network_get_slug",
     "SELECT " NETWORK_JSON("n") "::text, n.version, n.id FROM networks n "
     "WHERE n.slug = $1 AND n.is_public",
     1, DB_RETRY_SAFE},
    {"network_access",
     "SELECT n.org_id = $2, n.version FROM networks n WHERE n.id = $1 AND " VISIBLE_NETWORK, 2, DB_RETRY_SAFE},
    {"network_graph", "SELECT n.graph::text FROM networks n WHERE n.id = $1 AND " VISIBLE_NETWORK,
     2, DB_RETRY_SAFE},

    NETWORK_LIST("network_list_id_desc", "n.id", "id DESC", "v.id DESC"),
    NETWORK_LIST("network_list_id", "n.id", "id", "v.id"),
    NETWORK_LIST("network_list_name", "n.name, n.id", "name, id", "v.name, v.id"),
    NETWORK_LIST("network_list_name_desc", "n.name, n.id", "name DESC, id DESC",
                 "v.name DESC, v.id DESC"),
    NETWORK_LIST("network_list_update_date", "n.update_date, n.id", "update_date, id",
                 "v.update_date, v.id"),
    NETWORK_LIST("network_list_update_date_desc", "n.update_date, n.id",
                 "update_date DESC, id DESC", "v.update_date DESC, v.id DESC"),

    /* Create, in one transaction: blobs, the network with its task (ids
     * drawn first so each row can name the other), files, NOTIFY. */
    {"blob_insert", "INSERT INTO blobs (sha256, size) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, DB_RUN_ONCE},
    /* One clock reading for both dates of both rows: two column defaults
     * of clock_timestamp() differ by a microsecond, and a new network's
     * update_date must equal its create_date. */
    {"network_insert",
     "WITH ids AS (SELECT nextval('networks_id_seq') AS nid, nextval('tasks_id_seq') AS tid, "
     "clock_timestamp() AS at), "
     "n AS (INSERT INTO networks (id, org_id, name, description, metadata, framework, "
     "preprocessing, postprocessings, graph, task_id, create_date, update_date) "
     "SELECT ids.nid, $1, $2, $3, $4::jsonb, $5, $6::jsonb, $7::jsonb, $8::jsonb, ids.tid, "
     "ids.at, ids.at FROM ids RETURNING id, task_id), "
     "t AS (INSERT INTO tasks (id, org_id, network_id, kind, name, create_date, update_date) "
     "SELECT ids.tid, $1, ids.nid, 'deploy', 'deploy network ' || ids.nid, ids.at, ids.at "
     "FROM ids RETURNING id) "
     "SELECT n.id, n.task_id, pg_notify('nnreg_deploy', n.task_id::text) FROM n, t",
     8, DB_RUN_ONCE},
    {"network_file_insert",
     "INSERT INTO network_files (network_id, name, sha256, size, type, position) "
     "VALUES ($1, $2, $3, $4, $5, $6)",
     6, DB_RUN_ONCE},
    {"network_nodes_insert",
     "INSERT INTO network_nodes (network_id, name, op, blocked_op, blocked_node) "
     "SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) u",
     5, DB_RUN_ONCE},
    {"network_json", "SELECT " NETWORK_JSON("n") "::text, n.version FROM networks n WHERE n.id = $1",
     1, DB_RETRY_SAFE},

    {"idempotency_get",
     "SELECT status, body FROM idempotency_keys WHERE org_id = $1 AND key = $2 "
     "AND create_date > clock_timestamp() - " DB_IDEMPOTENCY_WINDOW,
     2, DB_RETRY_SAFE},
    {"idempotency_expire",
     "DELETE FROM idempotency_keys WHERE org_id = $1 AND key = $2 "
     "AND create_date <= clock_timestamp() - " DB_IDEMPOTENCY_WINDOW,
     2, DB_RUN_ONCE},
    {"idempotency_insert",
     "INSERT INTO idempotency_keys (org_id, key, status, body, network_id) "
     "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
     5, DB_RUN_ONCE},

    /* Updates: $1 id, $2 org, $3 name or NULL (keep), $4 description or
     * NULL, $5 metadata or NULL, $6 the versions If-Match accepts (an
     * array, possibly empty) or NULL for any. */
    {"network_update",
     "WITH u AS (UPDATE networks n SET "
     "name = COALESCE($3, n.name), description = COALESCE($4, n.description), "
     "metadata = COALESCE($5::jsonb, n.metadata), version = n.version + 1, "
     "update_date = clock_timestamp() "
     "WHERE n.id = $1 AND n.org_id = $2 "
     "AND ($6::integer[] IS NULL OR n.version = ANY($6::integer[])) "
     "RETURNING n.*) "
     "SELECT " NETWORK_JSON("u::networks") "::text, u.version FROM u",
     6, DB_RUN_ONCE},
    {"network_delete",
     "WITH d AS (DELETE FROM networks n WHERE n.id = $1 AND n.org_id = $2 "
     "AND ($3::integer[] IS NULL OR n.version = ANY($3::integer[])) RETURNING n.id) "
     "SELECT d.id, pg_notify('nnreg_undeploy', d.id::text) FROM d",
     3, DB_RUN_ONCE},

    {"task_get_auth",
     "SELECT k.org_id, k.app_id, k.key_hash, j.body FROM api_keys k "
     "LEFT JOIN LATERAL (SELECT nnreg_task_json(t)::text AS body FROM tasks t WHERE t.id = $2 "
     "AND (t.org_id = k.org_id OR (t.kind = 'deploy' AND EXISTS (SELECT 1 FROM networks n "
     "WHERE n.id = t.network_id AND n.is_public)))) j ON true "
     "WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
     2, DB_RETRY_SAFE},
    /* Inference (api/inference.c).  $1 network, $2 org: the network with
     * its deployment's state and whether its nodes were recorded. */
    {"inference_network",
     "SELECT n.preprocessing::text, n.postprocessings::text, t.id, t.status, t.error, "
     "EXISTS (SELECT 1 FROM network_nodes nn WHERE nn.network_id = n.id) "
     "FROM networks n LEFT JOIN tasks t ON t.id = n.task_id "
     "WHERE n.id = $1 AND " VISIBLE_NETWORK,
     2, DB_RETRY_SAFE},
    {"inference_nodes",
     "SELECT name, blocked_op, blocked_node FROM network_nodes "
     "WHERE network_id = $1 AND name = ANY($2::text[])",
     2, DB_RETRY_SAFE},
    {"inference_node_names", "SELECT name FROM network_nodes WHERE network_id = $1", 1, DB_RETRY_SAFE},
    /* One statement, so one round trip and one commit: $1 org, $2
     * network, $3 output tensors, $4 the pending cap, $5
     * synchronous_commit for the transaction, $6 the images (bytea[]), $7
     * their bboxes (jsonb[], NULL elements for none).  The task, its
     * request and inputs, and the wake-up (sent at commit).  No row when
     * the organization is at its pending cap. */
    {"inference_insert",
     "WITH sc AS (SELECT set_config('synchronous_commit', $5, true) AS v), "
     "ok AS (SELECT sc.v IS NOT NULL AND (SELECT count(*) FROM tasks "
     "WHERE org_id = $1::bigint AND status = 'pending' AND kind = 'inference') < $4::bigint "
     "AS ok FROM sc), "
     "t AS (INSERT INTO tasks (org_id, network_id, kind, name) "
     "SELECT $1::bigint, $2::bigint, 'inference', 'inference on network ' || $2::bigint "
     "FROM ok WHERE ok.ok RETURNING id), "
     "r AS (INSERT INTO inference_requests (task_id, network_id, output_tensors) "
     "SELECT t.id, $2::bigint, $3::text[] FROM t RETURNING task_id), "
     "i AS (INSERT INTO inference_inputs (task_id, position, image, bbox) "
     "SELECT r.task_id, u.ord - 1, u.image, u.bbox "
     "FROM r, unnest($6::bytea[], $7::jsonb[]) WITH ORDINALITY AS u(image, bbox, ord) "
     "RETURNING 1) "
     "SELECT r.task_id, pg_notify('nnreg_inference', r.task_id::text), "
     "(SELECT count(*) FROM i) FROM r",
     7, DB_RUN_ONCE},

    /* $1 ids array, $2 org, $3 limit, $4 offset. */
    {"task_list",
     "SELECT (SELECT count(*) FROM tasks t WHERE t.id = ANY($1::bigint[]) AND " VISIBLE_TASK "), "
     "COALESCE((SELECT json_agg(nnreg_task_json(s.t) ORDER BY (s.t).id) FROM "
     "(SELECT t FROM tasks t WHERE t.id = ANY($1::bigint[]) AND " VISIBLE_TASK
     " ORDER BY t.id LIMIT $3 OFFSET $4) s), '[]'::json)::text",
     4, DB_RETRY_SAFE},

    /* GET /metrics, one round trip over every organization's tasks.  Rows
     * (section, kind, status, bucket, count, seconds):
     *   tasks           count by kind and status
     *   deploy          finished deploy tasks by final status and duration
     *                   bucket (creation to last update), count and sum of
     *                   seconds; $1 the increasing upper bounds, the bucket
     *                   the index of the first bound >= the duration (a
     *                   duration equal to a bound belongs to it, as
     *                   Prometheus' le says; width_bucket alone would put it
     *                   in the next one), the length of $1 when above all
     *   oldest_pending  the age of the oldest pending task in seconds
     *                   (NULL when none) */
    {"metrics_tasks",
     "SELECT 'tasks', kind, status, NULL::integer, count(*), NULL::float8 "
     "FROM tasks GROUP BY kind, status "
     "UNION ALL "
     "SELECT 'deploy', 'deploy', d.status, d.bucket, count(*), sum(d.secs) FROM "
     "(SELECT f.status, f.secs, "
     "width_bucket(f.secs, $1::float8[]) - (f.secs = ANY($1::float8[]))::integer AS bucket "
     "FROM (SELECT status, extract(epoch FROM update_date - create_date)::float8 AS secs "
     "FROM tasks WHERE kind = 'deploy' AND status <> 'pending') f) d "
     "GROUP BY d.status, d.bucket "
     "UNION ALL "
     "SELECT 'oldest_pending', NULL, NULL, NULL, count(*), "
     "extract(epoch FROM clock_timestamp() - min(create_date))::float8 "
     "FROM tasks WHERE status = 'pending' "
     "ORDER BY 1, 2, 3, 4",
     1, DB_RETRY_SAFE},
};

const size_t api_nstatements = sizeof(api_statements) / sizeof(api_statements[0]);
