-- 002_ops_views: the nnreg_ops schema of views for dashboards and the
-- nnreg_readonly role that may read them and nothing else.
--
-- The views run with their owner's rights (the role that migrates), so
-- nnreg_readonly reads them without any privilege on the tables below them:
-- it never sees api_keys (key hashes), network graphs, task data or the
-- blobs' paths.  Dashboards log in with a role of their own made a member
-- of nnreg_readonly (docs/dashboards.md).  Times are timestamptz; days and
-- hours are cut in UTC.

-- Roles belong to the cluster, not to the database: another database of the
-- same cluster (staging beside production) may have created it already.
-- Created inside this migration's transaction, so a failed run leaves no
-- role behind.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nnreg_readonly') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles
                   WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
        RAISE EXCEPTION 'role nnreg_readonly does not exist and role % may not create roles',
                        current_user
            USING HINT = 'as a superuser run CREATE ROLE nnreg_readonly NOLOGIN, '
                         'then run nnreg-admin migrate again';
    END IF;
    CREATE ROLE nnreg_readonly NOLOGIN;
END
$$;

CREATE SCHEMA nnreg_ops;
COMMENT ON SCHEMA nnreg_ops IS
    'nnreg views for dashboards, readable by the role nnreg_readonly (docs/dashboards.md)';

-- Networks and public networks per organization; organizations without
-- networks are listed with zeros.
CREATE VIEW nnreg_ops.networks_per_organization AS
SELECT o.id AS org_id,
       o.name AS org_name,
       count(n.id) AS networks,
       count(n.id) FILTER (WHERE n.is_public) AS public_networks
FROM organizations o
LEFT JOIN networks n ON n.org_id = o.id
GROUP BY o.id, o.name;

-- The store as a whole, one row.  blobs/blob_bytes is what the blob store
-- holds (each content once); file_references/referenced_bytes is what the
-- networks' files add up to (a content used by two networks counts twice);
-- unreferenced blobs are what `nnreg-admin gc` may remove.
CREATE VIEW nnreg_ops.storage AS
SELECT b.blobs,
       b.blob_bytes,
       b.blobs - b.unreferenced_blobs AS referenced_blobs,
       b.unreferenced_blobs,
       b.unreferenced_bytes,
       f.file_references,
       f.referenced_bytes
FROM (SELECT count(*) AS blobs,
             COALESCE(sum(bl.size), 0)::bigint AS blob_bytes,
             count(*) FILTER (WHERE NOT r.used) AS unreferenced_blobs,
             COALESCE(sum(bl.size) FILTER (WHERE NOT r.used), 0)::bigint AS unreferenced_bytes
      FROM blobs bl
      CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM network_files nf
                                         WHERE nf.sha256 = bl.sha256) AS used) r) b
CROSS JOIN (SELECT count(*) AS file_references,
                   COALESCE(sum(nf.size), 0)::bigint AS referenced_bytes
            FROM network_files nf) f;

-- The same per organization: the files of its networks, and the distinct
-- contents they use.  A content shared by two organizations counts in both,
-- so these rows do not add up to storage.blobs.
CREATE VIEW nnreg_ops.storage_per_organization AS
SELECT o.id AS org_id,
       o.name AS org_name,
       COALESCE(f.file_references, 0) AS file_references,
       COALESCE(f.referenced_bytes, 0)::bigint AS referenced_bytes,
       COALESCE(d.blobs, 0) AS blobs,
       COALESCE(d.blob_bytes, 0)::bigint AS blob_bytes
FROM organizations o
LEFT JOIN (SELECT n.org_id, count(*) AS file_references, sum(nf.size) AS referenced_bytes
           FROM networks n JOIN network_files nf ON nf.network_id = n.id
           GROUP BY n.org_id) f ON f.org_id = o.id
LEFT JOIN (SELECT u.org_id, count(*) AS blobs, sum(bl.size) AS blob_bytes
           FROM (SELECT DISTINCT n.org_id, nf.sha256
                 FROM networks n JOIN network_files nf ON nf.network_id = n.id) u
           JOIN blobs bl ON bl.sha256 = u.sha256
           GROUP BY u.org_id) d ON d.org_id = o.id;

-- Tasks by kind and status.  Every status of every kind is listed, with 0
-- when there is none, and the deploy kind always, so that a panel shows 0
-- rather than "no data".  A pending task may be held by a deployer: see
-- oldest_pending_task.
CREATE VIEW nnreg_ops.tasks_by_status AS
SELECT k.kind, s.status, count(t.id) AS tasks
FROM (SELECT 'deploy'::text AS kind UNION SELECT DISTINCT kind FROM tasks) k
CROSS JOIN (VALUES ('pending'::text), ('success'), ('error')) s (status)
LEFT JOIN tasks t ON t.kind = k.kind AND t.status = s.status
GROUP BY k.kind, s.status;

-- Always one row: the oldest pending task of any kind, how long it has
-- waited (0 and NULLs when nothing is pending), how many deployers claimed
-- it and which one holds it now (owner, lease_until).
CREATE VIEW nnreg_ops.oldest_pending_task AS
SELECT COALESCE(GREATEST(extract(epoch FROM now() - t.create_date), 0), 0)::double precision
           AS age_seconds,
       t.id AS task_id,
       t.kind,
       t.org_id,
       t.network_id,
       t.attempts,
       t.owner,
       t.lease_until,
       t.create_date
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT * FROM tasks
                   WHERE status = 'pending'
                   ORDER BY create_date, id
                   LIMIT 1) t ON true;

-- Deployments that failed in the last 24 hours, newest first, with the
-- deployer's message.  network_id is NULL when the network was deleted
-- since.
CREATE VIEW nnreg_ops.deployment_errors_24h AS
SELECT t.id AS task_id,
       t.network_id,
       n.name AS network_name,
       t.org_id,
       o.name AS org_name,
       t.error,
       t.attempts,
       t.create_date,
       t.update_date AS failed_at
FROM tasks t
JOIN organizations o ON o.id = t.org_id
LEFT JOIN networks n ON n.id = t.network_id
WHERE t.kind = 'deploy'
  AND t.status = 'error'
  AND t.update_date >= now() - interval '24 hours'
ORDER BY t.update_date DESC, t.id DESC;

-- Finished deployments per hour: 24 rows, the current (partial) UTC hour
-- and the 23 before it, with zeros for quiet hours.  error_ratio is NULL
-- for an hour without finished deployments.
CREATE VIEW nnreg_ops.deployment_error_rate AS
SELECT h.hour,
       count(t.status) AS finished,
       count(t.status) FILTER (WHERE t.status = 'error') AS errors,
       (count(t.status) FILTER (WHERE t.status = 'error'))::double precision
           / NULLIF(count(t.status), 0) AS error_ratio
FROM generate_series(date_trunc('hour', now(), 'UTC') - interval '23 hours',
                     date_trunc('hour', now(), 'UTC'),
                     interval '1 hour') h (hour)
LEFT JOIN (SELECT date_trunc('hour', update_date, 'UTC') AS hour, status
           FROM tasks
           WHERE kind = 'deploy'
             AND status IN ('success', 'error')
             AND update_date >= date_trunc('hour', now(), 'UTC') - interval '23 hours') t
       ON t.hour = h.hour
GROUP BY h.hour;

-- Per UTC day, from the first day with an upload to today, zeros included:
-- networks created and the files and bytes they were created with
-- (bytes_uploaded counts a content each time it is sent), and the blobs
-- first stored that day (new_blob_bytes: what the store grew by).
-- Deleted networks no longer count; blobs count until gc removes them.
CREATE VIEW nnreg_ops.uploads_per_day AS
WITH created AS (
    SELECT (n.create_date AT TIME ZONE 'UTC')::date AS day,
           count(*) AS networks,
           sum(f.files) AS files,
           sum(f.bytes) AS bytes
    FROM networks n
    CROSS JOIN LATERAL (SELECT count(*) AS files, COALESCE(sum(nf.size), 0) AS bytes
                        FROM network_files nf WHERE nf.network_id = n.id) f
    GROUP BY 1
), stored AS (
    SELECT (bl.create_date AT TIME ZONE 'UTC')::date AS day,
           count(*) AS blobs,
           sum(bl.size) AS bytes
    FROM blobs bl
    GROUP BY 1
), days AS (
    SELECT d::date AS day
    FROM generate_series(LEAST((SELECT min(day) FROM created), (SELECT min(day) FROM stored),
                               (now() AT TIME ZONE 'UTC')::date),
                         (now() AT TIME ZONE 'UTC')::date,
                         interval '1 day') d
)
SELECT days.day,
       COALESCE(c.networks, 0) AS networks_created,
       COALESCE(c.files, 0)::bigint AS files_uploaded,
       COALESCE(c.bytes, 0)::bigint AS bytes_uploaded,
       COALESCE(s.blobs, 0) AS new_blobs,
       COALESCE(s.bytes, 0)::bigint AS new_blob_bytes
FROM days
LEFT JOIN created c ON c.day = days.day
LEFT JOIN stored s ON s.day = days.day;

-- Successful deployments finished in the last 7 days, newest first, with
-- the time from the create to the deployer's success (the wait in the
-- queue included).
CREATE VIEW nnreg_ops.deployment_durations AS
SELECT t.id AS task_id,
       t.network_id,
       t.org_id,
       o.name AS org_name,
       t.attempts,
       t.create_date,
       t.update_date AS finished_at,
       extract(epoch FROM t.update_date - t.create_date)::double precision AS duration_seconds
FROM tasks t
JOIN organizations o ON o.id = t.org_id
WHERE t.kind = 'deploy'
  AND t.status = 'success'
  AND t.update_date >= now() - interval '7 days'
ORDER BY t.update_date DESC, t.id DESC;

-- The views and nothing else.  Views a later migration adds to nnreg_ops
-- (as this same role) are readable by default; such a migration should
-- still GRANT them explicitly, since default privileges follow the role
-- that creates the objects.
GRANT USAGE ON SCHEMA nnreg_ops TO nnreg_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA nnreg_ops TO nnreg_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA nnreg_ops GRANT SELECT ON TABLES TO nnreg_readonly;

-- A dashboard login must be able to connect even where CONNECT was revoked
-- from PUBLIC; only the database's owner (or a role holding the grant
-- option) may give it, so other migrating roles leave it to the DBA.
DO $$
BEGIN
    IF has_database_privilege(current_database(), 'CONNECT WITH GRANT OPTION') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO nnreg_readonly', current_database());
    END IF;
END
$$;
