-- 004_perf_indexes: what the network lists need to stay fast with a
-- million networks in one organization (issue 5, docs/performance.md).
--
-- 1. An exact count without counting.  A list answers with the exact number
--    of networks the caller sees: its own and every public one.  count(*)
--    over a million rows costs 60-100 ms even as an index-only scan, on
--    every page.  network_counts keeps, per organization, how many networks
--    it has and how many of them are public, maintained by triggers in the
--    same transaction as the change itself: a snapshot that sees a network
--    row sees the counter that includes it, so the count stays exact under
--    concurrency (MVCC), it is just read instead of computed.  Writers of
--    one organization serialize on its counter row until they commit;
--    creates and deletes are rare next to reads, and a create's
--    transaction is short (the blobs are stored before it begins).
--    TRUNCATE is not counted: nnreg never truncates networks.
-- 2. Indexes that serve every list ordering, for both halves of what a
--    caller sees (its own networks, and the public networks of others), so
--    that a page is read in order from two index scans merged, never
--    sorted: (org_id, id DESC) and (id DESC) WHERE is_public exist since
--    001; name and update_date are added here.

CREATE TABLE network_counts (
    org_id          bigint PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    networks        bigint NOT NULL DEFAULT 0 CHECK (networks >= 0),
    public_networks bigint NOT NULL DEFAULT 0 CHECK (public_networks BETWEEN 0 AND networks)
);

INSERT INTO network_counts (org_id, networks, public_networks)
SELECT org_id, count(*), count(*) FILTER (WHERE is_public)
FROM networks GROUP BY org_id;

-- Inserts and deletes: once per statement, from the transition table, so a
-- bulk load of a million rows costs one counter update per organization
-- rather than a million.
CREATE FUNCTION nnreg_network_counts_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO network_counts AS c (org_id, networks, public_networks)
    SELECT org_id, count(*), count(*) FILTER (WHERE is_public)
    FROM new_rows GROUP BY org_id
    ORDER BY org_id -- the same lock order in every transaction
    ON CONFLICT (org_id) DO UPDATE
        SET networks = c.networks + EXCLUDED.networks,
            public_networks = c.public_networks + EXCLUDED.public_networks;
    RETURN NULL;
END
$$;

CREATE FUNCTION nnreg_network_counts_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE network_counts c
    SET networks = c.networks - d.networks,
        public_networks = c.public_networks - d.public_networks
    FROM (SELECT org_id, count(*) AS networks, count(*) FILTER (WHERE is_public) AS public_networks
          FROM old_rows GROUP BY org_id) d
    WHERE c.org_id = d.org_id;
    RETURN NULL;
END
$$;

-- Updates that move a network to another organization or (un)publish it:
-- per row, and only those rows (the WHEN clause is checked without calling
-- the function, so a PATCH of a description pays nothing).
CREATE FUNCTION nnreg_network_counts_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE network_counts
    SET networks = networks - 1, public_networks = public_networks - OLD.is_public::integer
    WHERE org_id = OLD.org_id;
    INSERT INTO network_counts AS c (org_id, networks, public_networks)
    VALUES (NEW.org_id, 1, NEW.is_public::integer)
    ON CONFLICT (org_id) DO UPDATE
        SET networks = c.networks + 1, public_networks = c.public_networks + EXCLUDED.public_networks;
    RETURN NULL;
END
$$;

CREATE TRIGGER networks_count_insert AFTER INSERT ON networks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nnreg_network_counts_insert();
CREATE TRIGGER networks_count_delete AFTER DELETE ON networks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nnreg_network_counts_delete();
CREATE TRIGGER networks_count_update AFTER UPDATE OF org_id, is_public ON networks
    FOR EACH ROW
    WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id OR OLD.is_public IS DISTINCT FROM NEW.is_public)
    EXECUTE FUNCTION nnreg_network_counts_update();

-- The number of networks organization o sees in a list without a name
-- filter: its own and the public ones of others (is_public NULL), the
-- public ones of everybody (true), or its own private ones (false).
CREATE FUNCTION nnreg_network_count(o bigint, is_public boolean) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN is_public IS NULL THEN
            COALESCE(sum(c.networks) FILTER (WHERE c.org_id = o), 0)
            + COALESCE(sum(c.public_networks) FILTER (WHERE c.org_id <> o), 0)
        WHEN is_public THEN COALESCE(sum(c.public_networks), 0)
        ELSE COALESCE(sum(c.networks - c.public_networks) FILTER (WHERE c.org_id = o), 0)
    END::bigint
    FROM network_counts c
$$;

CREATE INDEX networks_org_name_idx ON networks (org_id, name, id);
CREATE INDEX networks_org_update_date_idx ON networks (org_id, update_date, id);
CREATE INDEX networks_public_name_idx ON networks (name, id) WHERE is_public;
CREATE INDEX networks_public_update_date_idx ON networks (update_date, id) WHERE is_public;

-- 3. JSON objects built without parsing SQL on every request.  PostgreSQL
--    inlines a SQL function into the query that calls it only when the
--    function is a bare expression: no sub-select, and no volatility
--    stronger than it declares.  Otherwise every execution of a statement
--    parses and plans the function's body again (perf showed base_yyparse
--    at the top of the workers' backends).  nnreg_iso was declared
--    IMMUTABLE around to_char (STABLE): never inlined; it is STABLE now.
--    nnreg_network_json holds a sub-select (the files): the object is now
--    built by nnreg_network_object from the row and its files' array,
--    which the statements select themselves (src/api/statements.c), so
--    every piece inlines.  nnreg_network_json stays, with the same output,
--    for whoever calls it.
CREATE OR REPLACE FUNCTION nnreg_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION nnreg_file_json(f network_files) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object('name', f.name, 'size', f.size, 'sha256', f.sha256, 'type', f.type)
$$;

-- files: the json_agg of nnreg_file_json over the network's files in
-- position order, NULL when it has none.
CREATE FUNCTION nnreg_network_object(n networks, files json) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', n.id,
        'name', n.name,
        'description', n.description,
        'metadata', n.metadata,
        'framework', n.framework,
        'preprocessing', n.preprocessing,
        'postprocessings', n.postprocessings,
        'files', COALESCE(files, '[]'::json),
        'is_public', n.is_public,
        'slug', n.slug,
        'task_id', n.task_id,
        'create_date', nnreg_iso(n.create_date),
        'update_date', nnreg_iso(n.update_date))
$$;

CREATE OR REPLACE FUNCTION nnreg_network_json(n networks) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nnreg_network_object(n, (SELECT json_agg(nnreg_file_json(f) ORDER BY f.position)
                                    FROM network_files f WHERE f.network_id = n.id))
$$;
