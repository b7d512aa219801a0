-- 005_retention: what `nnreg-admin prune` needs to delete old rows in
-- batches without reading whole tables.
--
-- Finished inference tasks, oldest first: prune takes the oldest batch
-- past the retention period each time.  Only finished ones are in it, so
-- the hot path (inserting and claiming pending tasks) does not maintain it
-- until a task finishes.
CREATE INDEX tasks_finished_inference_idx ON tasks (update_date)
    WHERE kind = 'inference' AND status <> 'pending';

-- Deleting a task checks networks.task_id (its foreign key, ON DELETE SET
-- NULL): without this index every deleted task would scan all networks.
CREATE INDEX networks_task_id_idx ON networks (task_id);
