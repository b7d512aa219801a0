#!/usr/bin/env bash
# tests/bench/deploy_latency.sh - create -> success latency of deployments.
#
#   tests/bench/deploy_latency.sh
#
# Starts nnreg the way `scripts/dev up -d` does (nginx, nnreg-fcgi, one
# nnreg-deployer, PostgreSQL), in a private NNREG_VAR under /tmp on a free
# port.  Creates half_plus_two_cpu NNREG_BENCH_CREATES times (default 100),
# one after the other with curl, after one warm-up create that is not
# counted, and waits until every task has left `pending`.  Then, per task,
# from the tasks row:
#
#   latency = update_date - create_date
#
# create_date is taken when the create's transaction inserts the task (the
# NOTIFY goes out at its commit, a little later); update_date when the
# deployer writes the outcome.  So the figure covers the rest of the create's
# transaction, the notification, the claim, every check, the layout on disk,
# models.config and the final write.  Both times come from the database's
# clock.  The report's own duration_ms (the deployer's run, from the first
# check to the end of the layout) is shown beside it.
#
# The ceiling, measured in the same run: pgbench, one client for 5 s, running
# one committed single-row UPDATE of the tasks table.  A deployment needs at
# least two such commits (the claim and the result; lease extensions add more).
#
# Prints figures, never judges them: see docs/performance.md ("Deployment
# latency", goal p50 < 50 ms).
#
# Knobs: NNREG_BENCH_CREATES (default 100); NNREG_BENCH_TMPDIR (default
# /tmp), where the temp dir is made; NNREG_BENCH_KEEP=1 keeps the temp dir
# (state and logs) afterwards.  Everything it started is stopped, and the
# temp dir removed, on any exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DEV=$ROOT/scripts/dev
MODEL=$ROOT/tests/fixtures/models/half_plus_two_cpu
N=${NNREG_BENCH_CREATES:-100}
UP_TIMEOUT=900   # `up -d` may have to build first
WAIT_TIMEOUT=120 # seconds for every task to leave pending

case $N in '' | *[!0-9]* | 0) echo "NNREG_BENCH_CREATES must be a positive number" >&2; exit 2 ;; esac

TMP=$(mktemp -d "${NNREG_BENCH_TMPDIR:-/tmp}/nndl-XXXXXX")
chmod 0755 "$TMP" # postgres and www-data must reach NNREG_VAR when we are root
VAR=$TMP/v
export NNREG_VAR=$VAR
unset NNREG_DATABASE_URL

STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "$STARTED" = 1 ]; then
        timeout 300 "$DEV" down >/dev/null 2>&1 || echo "warning: scripts/dev down failed" >&2
    fi
    if [ "${NNREG_BENCH_KEEP:-0}" = 1 ]; then
        echo "state kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

die() { echo "deploy_latency: $*" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 200); do
    PORT=$((20000 + RANDOM % 30000))
    port_in_use "$PORT" || break
done
export NNREG_PORT=$PORT

echo "== nnreg deployment latency: $N creates of half_plus_two_cpu, NNREG_VAR=$VAR, port $PORT"
echo "   commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)'), $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ)"

STARTED=1
if ! timeout "$UP_TIMEOUT" "$DEV" up -d >"$TMP/up.log" 2>&1; then
    tail -n 30 "$TMP/up.log" >&2
    die "scripts/dev up -d failed"
fi
KEY=$(jq -r .api_key "$VAR/demo-key.json")
psql_at() { "$DEV" psql -At -v ON_ERROR_STOP=1 "$@"; }
grep -m1 ' started (poll' "$VAR/log/nnreg-deployer.log" | sed 's/^.*\] /   /' || true

create() { # prints the task id
    curl -sS --max-time 60 -o "$TMP/resp.json" -w '%{http_code}' \
        "http://127.0.0.1:$PORT/v0.7/networks/" -H "X-API-KEY: $KEY" -H 'Expect:' \
        --form-string name="latency bench $1" --form-string framework=tensorflow-1.x \
        --form-string 'preprocessing.inputs[0]tensor_name=x:0' \
        --form-string 'preprocessing.inputs[0]image.dimension_order=NHWC' \
        --form-string 'preprocessing.inputs[0]image.resize_type=SQUASH' \
        --form-string 'preprocessing.inputs[0]image.target_size=1x1' \
        --form-string 'preprocessing.inputs[0]image.color_channels=L' \
        --form-string 'preprocessing.batched_output=True' \
        --form-string 'postprocessings[0]tensors_output.tensors[0]=y:0' \
        -F "saved_model.pb=@$MODEL/saved_model.pb" \
        -F "variables.index=@$MODEL/variables/variables.index" \
        -F "variables.data-00000-of-00001=@$MODEL/variables/variables.data-00000-of-00001" \
        >"$TMP/code" || die "curl failed"
    [ "$(cat "$TMP/code")" = 201 ] || { cat "$TMP/resp.json" >&2; die "create answered $(cat "$TMP/code")"; }
    jq -r .task_id "$TMP/resp.json"
}

wait_done() { # TASK_IDS_CSV
    local i
    for ((i = 0; i < WAIT_TIMEOUT * 10; i++)); do
        [ "$(psql_at -c "SELECT count(*) FROM tasks WHERE id IN ($1) AND status = 'pending'")" = 0 ] && return 0
        sleep 0.1
    done
    die "tasks still pending after ${WAIT_TIMEOUT}s"
}

echo "-- warm-up create (not counted)"
wait_done "$(create warm-up)"

echo "-- $N creates, one after the other"
IDS=()
T0=$EPOCHREALTIME
for i in $(seq "$N"); do
    IDS+=("$(create "$i")")
done
T1=$EPOCHREALTIME
CSV=$(IFS=,; echo "${IDS[*]}")
wait_done "$CSV"

echo "-- ceiling: pgbench, 1 client, 5 s of one committed single-row UPDATE of tasks"
BIN=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n1)
printf 'UPDATE tasks SET update_date = update_date WHERE id = %s;\n' "${IDS[0]}" >"$TMP/one_update.sql"
eval "$("$DEV" env | grep '^export PG')"
CEIL=$("$BIN/pgbench" -n -c 1 -T 5 -f "$TMP/one_update.sql" 2>/dev/null \
    | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')

echo
echo "== results ($N deployments of half_plus_two_cpu, one deployer)"
psql_at -F ' ' -c "
WITH t AS (
  SELECT status, extract(epoch FROM update_date - create_date) * 1000 AS ms,
         (data->>'duration_ms')::float8 AS run_ms, attempts
    FROM tasks WHERE id IN ($CSV))
SELECT 'tasks ' || count(*) || ': ' || count(*) FILTER (WHERE status = 'success') || ' success, '
       || count(*) FILTER (WHERE status = 'error') || ' error, '
       || count(*) FILTER (WHERE attempts <> 1) || ' with attempts <> 1' FROM t
UNION ALL
SELECT format('create -> success (update_date - create_date): p50 %s ms, p99 %s ms, min %s ms, max %s ms, mean %s ms',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(min(ms)::numeric, 1), round(max(ms)::numeric, 1), round(avg(ms)::numeric, 1)) FROM t
UNION ALL
SELECT format('deployer run (report duration_ms):             p50 %s ms, p99 %s ms',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY run_ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY run_ms)::numeric, 1)) FROM t
UNION ALL
SELECT format('  of which between checks (lease extensions): p50 %s ms, p99 %s ms',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY run_ms - checks_ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY run_ms - checks_ms)::numeric, 1))
  FROM (SELECT (data->>'duration_ms')::float8 AS run_ms,
               (SELECT sum((c->>'duration_ms')::float8) FROM jsonb_array_elements(data->'checks') c) AS checks_ms
          FROM tasks WHERE id IN ($CSV)) s"
psql_at -F ' ' -c "
SELECT format('check %-12s p50 %s ms, p99 %s ms', c->>'name',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (c->>'duration_ms')::float8)::numeric, 3),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY (c->>'duration_ms')::float8)::numeric, 3))
  FROM tasks, jsonb_array_elements(data->'checks') WITH ORDINALITY AS x(c, n)
 WHERE id IN ($CSV) GROUP BY c->>'name' ORDER BY min(n)"
printf 'ceiling: one committed UPDATE (pgbench)      %s ms average\n' "${CEIL:-?}"
awk -v a="$T0" -v b="$T1" -v n="$N" 'BEGIN { printf "creates: %.1f s for %d (%.1f ms each, curl included)\n", b - a, n, 1000 * (b - a) / n }'
[ "$(psql_at -c "SELECT count(*) FROM tasks WHERE id IN ($CSV) AND status <> 'success'")" = 0 ] ||
    die "some deployments did not succeed: see $VAR/log/nnreg-deployer.log (NNREG_BENCH_KEEP=1)"
