-- 003_inference: inference tasks (tasks.kind 'inference'), the inputs they
-- wait on, and the graph's node names that POST /networks/{id}/inference
-- checks output_tensors against.
--
-- An inference request lives exactly as long as its task is pending: the
-- trigger below deletes it when the task leaves 'pending' (whoever finishes
-- it: nnreg-inferd, an operator's UPDATE), and it goes with its task when
-- the task is deleted.  Image bytes therefore never outlive the work they
-- were sent for, and an error path cannot leave them behind.

-- An inference's result: the tensors as JSON text, kept as the engine's
-- result writer printed it.  json, not jsonb: jsonb would convert every
-- value to numeric on the way in and back to text on every GET of the task,
-- which for a result of 100 000 values costs more than the inference.
-- The task object's "data" is this when set (nnreg_task_json below).
ALTER TABLE tasks ADD COLUMN result json;
-- lz4 compresses a large result several times faster than the default
-- pglz (PostgreSQL 14 and later, when built with lz4, as Debian's is).
DO $$
BEGIN
    ALTER TABLE tasks ALTER COLUMN result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available: inference results use the default compression';
END
$$;

CREATE OR REPLACE FUNCTION nnreg_task_json(t tasks) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', t.id,
        'name', t.name,
        'status', t.status,
        'error', t.error,
        'data', COALESCE(t.result, t.data::json),
        'create_date', nnreg_iso(t.create_date),
        'update_date', nnreg_iso(t.update_date))
$$;

-- The API's per-organization cap on pending inference tasks counts these.
CREATE INDEX tasks_pending_inference_org_idx ON tasks (org_id)
    WHERE status = 'pending' AND kind = 'inference';

CREATE TABLE inference_requests (
    task_id        bigint PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    network_id     bigint NOT NULL,
    -- The tensors to return, "node:N" as the user named them (at least one;
    -- the API fills in the network's postprocessing tensors by default).
    output_tensors text[] NOT NULL CHECK (cardinality(output_tensors) BETWEEN 1 AND 256),
    create_date    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per input, in the order of the network's preprocessing inputs.
-- The image bytes are stored, already fetched when the source was a URL
-- (the API fetches it during the request: docs/api.md says why).
CREATE TABLE inference_inputs (
    task_id   bigint NOT NULL REFERENCES inference_requests(task_id) ON DELETE CASCADE,
    position  integer NOT NULL CHECK (position BETWEEN 0 AND 255),
    image     bytea NOT NULL CHECK (octet_length(image) BETWEEN 1 AND 268435456),
    bbox      jsonb CHECK (bbox IS NULL OR jsonb_typeof(bbox) = 'object'),
    PRIMARY KEY (task_id, position)
);

CREATE FUNCTION nnreg_inference_done() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM inference_requests WHERE task_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_inference_done AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.kind = 'inference' AND NEW.status <> 'pending')
    EXECUTE FUNCTION nnreg_inference_done();

-- The graph's top-level nodes, written when the network is created (its
-- graph is parsed then anyway), so that a request's output_tensors are
-- checked with one indexed lookup instead of a parse of the graph.
-- blocked_op / blocked_node: the first node, on the way from the graph's
-- inputs to this one, whose op nnreg's engine does not run (NULL when the
-- engine runs everything this node needs).  Networks created before this
-- migration have no rows: their requests are checked by nnreg-inferd.
CREATE TABLE network_nodes (
    network_id   bigint NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    name         text NOT NULL,
    op           text NOT NULL,
    blocked_op   text,
    blocked_node text,
    PRIMARY KEY (network_id, name)
);
