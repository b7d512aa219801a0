#!/usr/bin/env bash
# tests/bench/infer_latency.sh - POST-to-result latency of inferences through
# the API, against the engine's own time on the same requests.
#
#   tests/bench/infer_latency.sh [FIXTURE]     (default nsfw_mobilenet_v2)
#
# FIXTURE is a folder of tests/fixtures/networks, or half_plus_two_cpu (from
# tests/fixtures/models, fed a 1x1 grey PNG): its engine time is a few
# microseconds, so its figures are the service's own cost.
#
# Starts nnreg the way `scripts/dev up -d` does (nginx, nnreg-fcgi,
# nnreg-deployer, nnreg-inferd, PostgreSQL) in a private NNREG_VAR under /tmp
# on a free port, creates the fixture network of tests/fixtures/networks
# through the API and waits for its deployment, runs one warm-up inference
# (the model is loaded then; not counted), then NNREG_BENCH_INFERENCES
# (default 30) inferences of input.png one after the other, each sent with
# Python requests on one keep-alive connection, as multipart (the image in
# the part "inputs[0]image.source"), as the official client sends a file.
#
# Per inference:
#   post      the client's time for the POST (upload, validation, the
#             insert and its commit, the answer)
#   server    update_date - create_date of the task: from the insert (in the
#             POST's transaction) to nnreg-inferd's final write, database
#             clock; covers the commit, the NOTIFY, the wake-up, the claim,
#             reading the request, decoding, preprocessing, the engine, the
#             result JSON and its write
#   engine    infer_run alone, from nnreg-inferd's log line for the task
#   total     POST-to-result: from just before the client sends the POST to
#             the final write's clock_timestamp() (client and database share
#             this host's clock)
#   overhead  total - engine: what the service adds to the engine
#
# The client (Python requests, one keep-alive connection) polls GET
# /tasks/N/ only to know when to send the next request; the figures do not
# depend on its polling.  Prints figures, never judges
# them: see docs/performance.md ("Inference latency", goal: overhead
# <= 10 ms).
#
# Knobs: NNREG_BENCH_INFERENCES (default 30), NNREG_BENCH_TMPDIR (default
# /tmp), NNREG_BENCH_KEEP=1 keeps the temp dir.  Everything it started is
# stopped, and the temp dir removed, on any exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DEV=$ROOT/scripts/dev
FIXTURE=${1:-nsfw_mobilenet_v2}
NET=$ROOT/tests/fixtures/networks/$FIXTURE
N=${NNREG_BENCH_INFERENCES:-30}
HP2=0
[ "$FIXTURE" = half_plus_two_cpu ] && HP2=1
UP_TIMEOUT=900
WAIT_TIMEOUT=300

case $N in '' | *[!0-9]* | 0) echo "NNREG_BENCH_INFERENCES must be a positive number" >&2; exit 2 ;; esac
[ "$HP2" = 1 ] || [ -f "$NET/network.json" ] || { echo "no fixture network $NET" >&2; exit 2; }

TMP=$(mktemp -d "${NNREG_BENCH_TMPDIR:-/tmp}/nnil-XXXXXX")
chmod 0755 "$TMP"
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

die() { echo "infer_latency: $*" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 200); do
    PORT=$((20000 + RANDOM % 30000))
    port_in_use "$PORT" || break
done
export NNREG_PORT=$PORT
BASE=http://127.0.0.1:$PORT/v0.7

echo "== nnreg inference latency: $N inferences of $FIXTURE on input.png, NNREG_VAR=$VAR, port $PORT"
echo "   commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)'), $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ)"

STARTED=1
if ! timeout "$UP_TIMEOUT" "$DEV" up -d >"$TMP/up.log" 2>&1; then
    tail -n 30 "$TMP/up.log" >&2
    die "scripts/dev up -d failed"
fi
KEY=$(jq -r .api_key "$VAR/demo-key.json")
psql_at() { "$DEV" psql -At -v ON_ERROR_STOP=1 "$@"; }

if [ "$HP2" = 1 ]; then
    # half_plus_two_cpu behind a 1x1 grey image input (x:0 has no declared
    # shape, so the [1, 1, 1, 1] image tensor is fed as x).
    MODEL=$ROOT/tests/fixtures/models/half_plus_two_cpu
    NET=$TMP/hp2
    mkdir -p "$NET"
    cat >"$NET/network.json" <<'JSON'
{"name": "latency bench half_plus_two", "framework": "tensorflow-1.x",
 "preprocessing": {"inputs": [{"tensor_name": "x:0", "image": {"dimension_order": "NHWC",
   "resize_type": "SQUASH", "target_size": "1x1", "color_channels": "L"}}]},
 "postprocessings": [{"tensors_output": {"tensors": ["y:0"]}}]}
JSON
    # A 1x1 grey PNG, value 3.
    printf '%s' iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgBgAABQAE69OlZgAAAABJRU5ErkJggg== \
        | base64 -d >"$NET/input.png"
    cp "$MODEL/saved_model.pb" "$NET/saved_model.pb"
fi

# The create: network.json as the "data" JSON part, the graph and the mean
# files as file parts.
files=(-F "saved_model.pb=@$NET/saved_model.pb")
if [ "$HP2" = 1 ]; then
    files+=(-F "variables.index=@$MODEL/variables/variables.index"
        -F "variables.data-00000-of-00001=@$MODEL/variables/variables.data-00000-of-00001")
fi
for mean in $(jq -r '.preprocessing.inputs[].image.mean_file // empty' "$NET/network.json"); do
    files+=(-F "$mean=@$NET/$mean")
done
code=$(curl -sS --max-time 300 -o "$TMP/net.json" -w '%{http_code}' "$BASE/networks/" \
    -H "X-API-KEY: $KEY" -H 'Expect:' -F "data=@$NET/network.json;type=application/json" \
    "${files[@]}") || die "curl failed"
[ "$code" = 201 ] || { cat "$TMP/net.json" >&2; die "create answered $code"; }
NID=$(jq -r .id "$TMP/net.json")
DEPLOY_TASK=$(jq -r .task_id "$TMP/net.json")

task_status() { curl -sS --max-time 30 "$BASE/tasks/$1/" -H "X-API-KEY: $KEY" | jq -r .status; }
wait_task() { # TASK_ID: bounded polling until it leaves pending
    local i s
    for ((i = 0; i < WAIT_TIMEOUT * 200; i++)); do
        s=$(task_status "$1")
        [ "$s" != pending ] && { [ "$s" = success ] || die "task $1 ended $s"; return 0; }
        sleep 0.005
    done
    die "task $1 still pending after ${WAIT_TIMEOUT}s"
}
wait_task "$DEPLOY_TASK"
echo "-- network $NID deployed"

echo "-- warm-up inference (loads the model; not counted), then $N inferences, one after the other"
# The client: one keep-alive HTTP connection (requests.Session), so that no
# process start or TCP handshake is counted.  The image goes as the
# official client sends a file: a multipart part "inputs[0]image.source".
# Per request: task id, POST seconds, and the wall clock just before the
# POST (this host's clock, which the database's clock_timestamp() also
# reads).
/usr/bin/python3 - "$BASE" "$KEY" "$NID" "$NET/input.png" "$N" >"$TMP/posts" <<'PY'
import sys, time, requests
base, key, nid, image, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
png = open(image, "rb").read()
s = requests.Session()
s.headers["X-API-KEY"] = key
def wait(tid):
    for _ in range(60000):  # bounded: 5 minutes at most
        st = s.get("%s/tasks/%d/" % (base, tid), timeout=30).json()["status"]
        if st != "pending":
            if st != "success":
                sys.exit("task %d ended %s" % (tid, st))
            return
        time.sleep(0.005)
    sys.exit("task %d still pending" % tid)
for i in range(n + 1):
    start = time.time()
    t0 = time.monotonic()
    r = s.post("%s/networks/%s/inference" % (base, nid),
               files={"inputs[0]image.source": ("input.png", png)}, timeout=60)
    post = time.monotonic() - t0
    if r.status_code != 201:
        sys.exit("inference answered %d: %s" % (r.status_code, r.text))
    tid = r.json()["task_id"]
    wait(tid)
    if i > 0:  # the first one loads the model
        print(tid, "%.6f" % post, "%.6f" % start)
PY

# Engine times from nnreg-inferd's log: "task N: network M: engine X ms, ..."
sed -n 's/.*task \([0-9]*\): network [0-9]*: engine \([0-9.]*\) ms, before it \([0-9.]*\) ms.*, result \([0-9.]*\) ms.*/\1 \2 \3 \4/p' \
    "$VAR/log/nnreg-inferd.log" >"$TMP/engine"
CSV=$(cut -d' ' -f1 "$TMP/posts" | paste -sd,)
psql_at -F ' ' -c "SELECT id, extract(epoch FROM update_date - create_date) * 1000,
                          extract(epoch FROM update_date) FROM tasks
                   WHERE id IN ($CSV) AND status = 'success' ORDER BY id" >"$TMP/server"

echo
echo "== results ($N inferences of $FIXTURE, one nnreg-inferd, sequential)"
awk '
    FILENAME == ARGV[1] { post[$1] = $2 * 1000; start[$1] = $3; next }
    FILENAME == ARGV[2] { eng[$1] = $2; before[$1] = $3; res[$1] = $4; next }
    { server[$1] = $2; done[$1] = $3; ids[n++] = $1 }
    function pct(arr, k,    m, i, j, t, v) {
        m = 0
        for (i in arr) v[m++] = arr[i]
        for (i = 0; i < m; i++) for (j = i + 1; j < m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((m - 1) * k + 0.5)]
    }
    END {
        for (i = 0; i < n; i++) {
            id = ids[i]
            p[i] = post[id]; s[i] = server[id]; e[i] = eng[id]; b[i] = before[id]; r[i] = res[id]
            t[i] = (done[id] - start[id]) * 1000; o[i] = t[i] - eng[id]
        }
        printf "%-44s %9s %9s %9s\n", "", "p50 ms", "p90 ms", "max ms"
        printf "%-44s %9.2f %9.2f %9.2f\n", "engine (infer_run)", pct(e, .5), pct(e, .9), pct(e, 1)
        printf "%-44s %9.2f %9.2f %9.2f\n", "inferd before the engine (request, decode, ...)", pct(b, .5), pct(b, .9), pct(b, 1)
        printf "%-44s %9.2f %9.2f %9.2f\n", "inferd result JSON", pct(r, .5), pct(r, .9), pct(r, 1)
        printf "%-44s %9.2f %9.2f %9.2f\n", "server: task insert -> success", pct(s, .5), pct(s, .9), pct(s, 1)
        printf "%-44s %9.2f %9.2f %9.2f\n", "POST (client)", pct(p, .5), pct(p, .9), pct(p, 1)
        printf "%-44s %9.2f %9.2f %9.2f\n", "total: POST-to-result", pct(t, .5), pct(t, .9), pct(t, 1)
        printf "%-44s %9.2f %9.2f %9.2f\n", "overhead: total - engine", pct(o, .5), pct(o, .9), pct(o, 1)
        printf "inferences counted: %d\n", n
    }' "$TMP/posts" "$TMP/engine" "$TMP/server"
