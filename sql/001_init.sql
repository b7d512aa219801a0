-- 001_init: organizations, API keys, blobs, networks, their files, tasks and
-- idempotency records.  Applied by `nnreg-admin migrate`, which records it
-- in nnreg_migrations.

CREATE TABLE organizations (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),
    create_date timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Keys are stored as the SHA-256 of the key (hex); the key itself is shown
-- once by `nnreg-admin key create`.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    app_id      text NOT NULL UNIQUE,
    key_hash    text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    create_date timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz
);

-- One row per stored content; the file is <data_dir>/blobs/sha256/ab/<sha256>.
CREATE TABLE blobs (
    sha256      text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size        bigint NOT NULL CHECK (size > 0),
    create_date timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE networks (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES organizations(id),
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    framework       text NOT NULL,
    preprocessing   jsonb NOT NULL,
    postprocessings jsonb NOT NULL DEFAULT '[]'::jsonb,
    graph           jsonb NOT NULL,          -- the parsed graph summary, served by /graph/
    is_public       boolean NOT NULL DEFAULT false,
    slug            text UNIQUE,
    version         integer NOT NULL DEFAULT 1, -- bumped on every change: the ETag
    task_id         bigint,
    create_date     timestamptz NOT NULL DEFAULT clock_timestamp(),
    update_date     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX networks_org_id_idx ON networks (org_id, id DESC);
CREATE INDEX networks_public_idx ON networks (id DESC) WHERE is_public;

CREATE TABLE network_files (
    network_id  bigint NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    name        text NOT NULL,
    sha256      text NOT NULL REFERENCES blobs(sha256),
    size        bigint NOT NULL,
    type        text NOT NULL,
    position    integer NOT NULL,
    PRIMARY KEY (network_id, name)
);
CREATE INDEX network_files_sha256_idx ON network_files (sha256);

-- Deployment (and later inference) tasks.  status is exactly what the
-- official client knows; while a deployer works on a task it stays pending
-- and owner/lease_until/attempts say who holds it.
CREATE TABLE tasks (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organizations(id),
    network_id  bigint REFERENCES networks(id) ON DELETE SET NULL,
    kind        text NOT NULL DEFAULT 'deploy',
    name        text NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'error')),
    error       text,
    data        jsonb,
    owner       text,
    attempts    integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    create_date timestamptz NOT NULL DEFAULT clock_timestamp(),
    update_date timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX tasks_pending_idx ON tasks (id) WHERE status = 'pending';
CREATE INDEX tasks_org_id_idx ON tasks (org_id, id);

ALTER TABLE networks ADD CONSTRAINT networks_task_id_fkey
    FOREIGN KEY (task_id) REFERENCES tasks(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

-- A create's response kept for 24 hours under its Idempotency-Key.
CREATE TABLE idempotency_keys (
    org_id       bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    status       integer NOT NULL,
    body         text NOT NULL,
    network_id   bigint,
    create_date  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_create_date_idx ON idempotency_keys (create_date);

-- ISO 8601 in UTC with microseconds and a Z, as API.md shows dates.
CREATE FUNCTION nnreg_iso(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The network object of API.md, built in one place so that every route
-- answers with the same shape in one round trip.
CREATE FUNCTION nnreg_network_json(n networks) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', n.id,
        'name', n.name,
        'description', n.description,
        'metadata', n.metadata,
        'framework', n.framework,
        'preprocessing', n.preprocessing,
        'postprocessings', n.postprocessings,
        'files', COALESCE((SELECT json_agg(json_build_object(
                              'name', f.name, 'size', f.size, 'sha256', f.sha256, 'type', f.type)
                              ORDER BY f.position)
                           FROM network_files f WHERE f.network_id = n.id), '[]'::json),
        'is_public', n.is_public,
        'slug', n.slug,
        'task_id', n.task_id,
        'create_date', nnreg_iso(n.create_date),
        'update_date', nnreg_iso(n.update_date))
$$;

CREATE FUNCTION nnreg_task_json(t tasks) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', t.id,
        'name', t.name,
        'status', t.status,
        'error', t.error,
        'data', t.data,
        'create_date', nnreg_iso(t.create_date),
        'update_date', nnreg_iso(t.update_date))
$$;
