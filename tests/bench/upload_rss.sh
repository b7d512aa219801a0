#!/usr/bin/env bash
# tests/bench/upload_rss.sh - one create with a 1 GiB variables shard, measured.
#
#   tests/bench/upload_rss.sh
#
# Starts nnreg the way `scripts/dev up -d` does, in a private NNREG_VAR under
# /tmp on a free port, with NNREG_WORKERS=1 so that the one worker serves the
# upload; creates half_plus_two_cpu with its variables.data-00000-of-00001
# grown to 1 GiB with random bytes (curl -F, which streams from disk);
# samples the worker's VmRSS/VmHWM every 50 ms (and nginx's and the worker's
# temp files every 250 ms); checks the stored blob.  The ceiling is measured
# beside it: dd of the same bytes into the same data directory with
# conv=fsync, once before the upload into page cache nobody just freed (its
# file is kept until the upload is over, so the upload does not get to reuse
# its pages either: like for like), and once after into the pages just
# freed, which on a VM can be several times faster (docs/performance.md).
# Prints figures, never judges them: see docs/performance.md.
#
# Knobs: NNREG_BENCH_MIB (default 1024) the shard size in MiB;
#        NNREG_BENCH_TMPDIR (default /tmp) where the temp dir is made;
#        NNREG_BENCH_KEEP=1 keeps the temp dir (state and logs) afterwards.
# Everything it started is stopped, and the temp dir removed, on any exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DEV=$ROOT/scripts/dev
MODEL=$ROOT/tests/fixtures/models/half_plus_two_cpu
MIB=${NNREG_BENCH_MIB:-1024}
UP_TIMEOUT=900       # `up -d` may have to build first
UPLOAD_TIMEOUT=1200  # curl --max-time for the create
DD_TIMEOUT=900
SAMPLE_INTERVAL=0.05

case $MIB in '' | *[!0-9]*) echo "NNREG_BENCH_MIB must be a number of MiB" >&2; exit 2 ;; esac

TMP=$(mktemp -d "${NNREG_BENCH_TMPDIR:-/tmp}/nnub-XXXXXX")
chmod 0755 "$TMP" # postgres and www-data must reach NNREG_VAR when we are root
VAR=$TMP/v
SHARD=$TMP/shard
SAMPLES=$TMP/samples
FSAMPLES=$TMP/file-samples
export NNREG_VAR=$VAR NNREG_WORKERS=1
unset NNREG_DATABASE_URL

SAMPLER_PID=
STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # shellcheck disable=SC2086
    if [ -n "$SAMPLER_PID" ]; then kill $SAMPLER_PID 2>/dev/null || true; wait 2>/dev/null || true; fi
    if [ "$STARTED" = 1 ]; then
        timeout 300 "$DEV" down >/dev/null 2>&1 || echo "warning: scripts/dev down failed" >&2
    fi
    if [ "${NNREG_BENCH_KEEP:-0}" = 1 ]; then
        rm -f "$SHARD" "$VAR/data/ddtest"
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

die() { echo "upload_rss: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# kB figure of FIELD (VmRSS, VmHWM) in /proc/PID/status, empty if gone.
vm() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 200); do
    PORT=$((20000 + RANDOM % 30000))
    port_in_use "$PORT" || break
done
export NNREG_PORT=$PORT

echo "== nnreg upload bench: ${MIB} MiB shard, NNREG_VAR=$VAR, port $PORT"
echo "   commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)'), $(nproc) CPUs, $(uname -r)"

# ------------------------------------------------------------------ start
STARTED=1
if ! timeout "$UP_TIMEOUT" "$DEV" up -d >"$TMP/up.log" 2>&1; then
    tail -n 30 "$TMP/up.log" >&2
    die "scripts/dev up -d failed"
fi
KEY=$(jq -r .api_key "$VAR/demo-key.json")
SUP=$(head -n1 "$VAR/run/nnreg-fcgi.pid")
WORKER=
for _ in $(seq 100); do
    WORKER=$(ps -o pid= --ppid "$SUP" 2>/dev/null | xargs)
    [ -n "$WORKER" ] && break
    sleep 0.1
done
case $WORKER in '' | *' '*) die "expected exactly one worker under supervisor $SUP, found: '${WORKER}'" ;; esac
DATA=$VAR/data
BODY_TMP=$VAR/nginx/client_body
NGINX=$(head -n1 "$VAR/run/nginx.pid")

# ------------------------------------------------------------------ data
# The model's own 20-byte shard first (what variables.index points into, so
# that the shard stays valid for a create that checks it against the index),
# then random bytes up to the size.
ORIG=$MODEL/variables/variables.data-00000-of-00001
echo "-- generating ${MIB} MiB: the model's shard, then random bytes"
{ cat "$ORIG"; head -c $((MIB * 1048576 - $(stat -c %s "$ORIG"))) /dev/urandom; } >"$SHARD"
SIZE=$(stat -c %s "$SHARD")
SHA=$(timeout 600 sha256sum "$SHARD" | cut -d' ' -f1)

# ------------------------------------------------------------------ ceiling
dd_time() { # OUT: seconds for dd of the shard into OUT with conv=fsync
    local a b
    sync
    a=$(now)
    timeout "$DD_TIMEOUT" dd if="$SHARD" of="$1" bs=1M conv=fsync status=none
    b=$(now)
    sub "$b" "$a"
}
echo "-- ceiling: dd of the same bytes into the data directory, conv=fsync"
DD_S=$(dd_time "$DATA/ddtest")

# ------------------------------------------------------------------ upload
RSS0=$(vm "$WORKER" VmRSS)
HWM0=$(vm "$WORKER" VmHWM)
# Peak since start-up includes start-up; reset it so VmHWM afterwards is the
# upload's own peak (Linux >= 4.0; needs to own the process or be root).
HWM_RESET=no
if echo 5 >"/proc/$WORKER/clear_refs" 2>/dev/null; then HWM_RESET=yes; fi

# Memory sampler: no fork per sample (bash builtins only), so that 50 ms is
# 50 ms on a busy 2-CPU machine.  Lines: t(s) VmRSS(kB) VmHWM(kB).
mem_sampler() {
    local t0=${1/./} line k v rss hwm fd
    exec {fd}<> <(:) # read -t on a pipe nobody writes: a fork-free sleep
    while [ -r "/proc/$WORKER/status" ]; do
        rss=0 hwm=0
        while read -r k v _; do
            case $k in VmRSS:) rss=$v ;; VmHWM:) hwm=$v ;; esac
        done <"/proc/$WORKER/status" 2>/dev/null || true
        line=$(( ${EPOCHREALTIME/./} - t0 ))
        printf '%d.%06d %s %s\n' $((line / 1000000)) $((line % 1000000)) "$rss" "$hwm"
        read -r -t "$SAMPLE_INTERVAL" -u "$fd" _ || true
    done
}
# File sampler, every 0.25 s: t(s), nginx's request body temp files (count,
# bytes), bytes in the worker's upload temp files.  nginx unlinks a request
# body's temp file as soon as it has opened it: it is seen only through its
# workers' open descriptors.
file_sampler() {
    local t0=$1 nb up
    while [ -d "/proc/$WORKER" ]; do
        nb=$(for p in $(ps -o pid= --ppid "$NGINX" 2>/dev/null); do
                 find "/proc/$p/fd" -lname "$BODY_TMP/*" -printf '%p\n' 2>/dev/null
             done | xargs -r stat -L -c %s 2>/dev/null | awk '{ n++; s += $1 } END { printf "%d %d", n, s }')
        up=$(find "$DATA/tmp" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }')
        printf '%s %s %s\n' "$(sub "$EPOCHREALTIME" "$t0")" "$nb" "$up"
        sleep 0.25
    done
}

sync
echo "-- uploading (curl -F, streamed from disk)"
T0=$(now)
mem_sampler "$T0" >"$SAMPLES" &
SAMPLER_PID=$!
file_sampler "$T0" >"$FSAMPLES" &
SAMPLER_PID="$SAMPLER_PID $!"
set +e
CURL_OUT=$(curl -sS --max-time "$UPLOAD_TIMEOUT" -o "$TMP/resp.json" -D "$TMP/resp.headers" \
    -w '%{http_code} %{time_total} %{size_upload} %{speed_upload}' \
    "http://127.0.0.1:$PORT/v0.7/networks/" -H "X-API-KEY: $KEY" -H 'Expect:' \
    --form-string name="upload bench ${MIB} MiB" --form-string framework=tensorflow-1.x \
    --form-string 'preprocessing.inputs[0]tensor_name=x:0' \
    --form-string 'preprocessing.inputs[0]image.dimension_order=NHWC' \
    --form-string 'preprocessing.inputs[0]image.resize_type=SQUASH' \
    --form-string 'preprocessing.inputs[0]image.target_size=1x1' \
    --form-string 'preprocessing.inputs[0]image.color_channels=L' \
    --form-string 'preprocessing.batched_output=True' \
    --form-string 'postprocessings[0]tensors_output.tensors[0]=y:0' \
    -F "saved_model.pb=@$MODEL/saved_model.pb" \
    -F "variables.index=@$MODEL/variables/variables.index" \
    -F "variables.data-00000-of-00001=@$SHARD;filename=variables.data-00000-of-00001")
CURL_RC=$?
set -e
T1=$(now)
sleep 0.5 # one more sample of each kind after the answer
# shellcheck disable=SC2086
kill $SAMPLER_PID 2>/dev/null || true
wait 2>/dev/null || true
SAMPLER_PID=
[ "$CURL_RC" = 0 ] || die "curl failed (exit $CURL_RC)"
read -r HTTP_CODE CURL_TIME UP_BYTES CURL_SPEED <<<"$CURL_OUT"
RSS1=$(vm "$WORKER" VmRSS)
HWM1=$(vm "$WORKER" VmHWM)
[ "$HTTP_CODE" = 201 ] || { cat "$TMP/resp.json" >&2; die "create answered $HTTP_CODE, not 201"; }

RID=$(awk -F': ' 'tolower($1) == "x-request-id" { gsub("\r", "", $2); print $2 }' "$TMP/resp.headers")
# The worker's line: "... nnreg-fcgi[PID] req=RID POST /v0.7/networks/ 201 LEN MSms ... in=BYTES"
LOGLINE=$(grep -F "req=$RID " "$VAR/log/nnreg-fcgi.log" | grep -E ' [0-9.]+ms ' | tail -n1 || true)
SRV_MS=$(sed -n 's/.* \([0-9.]*\)ms org=.*/\1/p' <<<"$LOGLINE")
SRV_IN=$(sed -n 's/.* in=\([0-9]*\).*/\1/p' <<<"$LOGLINE")
ACCESS=$(grep -F "rid=$RID " "$VAR/log/nginx-access.log" | tail -n1 || true)
NGX_T=$(sed -n 's/.* t=\([0-9.]*\) .*/\1/p' <<<"$ACCESS")
NGX_UP=$(sed -n 's/.* up=[0-9]*\/\([0-9.]*\) .*/\1/p' <<<"$ACCESS")

# ------------------------------------------------------------------ blob
R_SIZE=$(jq -r '.files[] | select(.name == "variables.data-00000-of-00001") | .size' "$TMP/resp.json")
R_SHA=$(jq -r '.files[] | select(.name == "variables.data-00000-of-00001") | .sha256' "$TMP/resp.json")
BLOB=$DATA/blobs/sha256/${SHA:0:2}/$SHA
B_SIZE=$(stat -c %s "$BLOB" 2>/dev/null || echo missing)
BLOB_OK=ok
[ "$R_SIZE" = "$SIZE" ] && [ "$R_SHA" = "$SHA" ] && [ "$B_SIZE" = "$SIZE" ] || BLOB_OK=MISMATCH
LEFT_BODY=$(find "$BODY_TMP" -type f 2>/dev/null | wc -l)
NGX_WARN=$(grep -c 'a client request body is buffered to a temporary file' "$VAR/log/nginx-error.log" || true)
LEFT_UP=$(find "$DATA/tmp" -type f 2>/dev/null | wc -l)

echo "-- ceiling again, into the pages just freed"
rm -f "$DATA/ddtest"
DD2_S=$(dd_time "$DATA/ddtest")
rm -f "$DATA/ddtest"

# ------------------------------------------------------------------ report
# Samples: the peak, and when nginx's temp file was complete (the client
# phase ends there; the FastCGI phase begins).
read -r PEAK_RSS PEAK_HWM <<<"$(awk '
    { if ($2 > r) r = $2; if ($3 > h) h = $3 } END { printf "%d %d", r, h }' "$SAMPLES")"
read -r NB_FILES NB_MAX <<<"$(awk '
    { if ($3 > b) b = $3; if ($2 > f) f = $2 } END { printf "%d %d", f, b }' "$FSAMPLES")"
NB_FULL_AT=$(awk -v s="$UP_BYTES" '$3 >= s { print $1; exit }' "$FSAMPLES")
NB_GONE_AT=$(awk -v s="$UP_BYTES" 'seen && $2 == 0 { print $1; exit } $3 >= s { seen = 1 }' "$FSAMPLES")
UP_FIRST_AT=$(awk '$4 > 0 { print $1; exit }' "$FSAMPLES")
NSAMPLES=$(wc -l <"$SAMPLES")

f2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "?" }'; }
WALL=$(sub "$T1" "$T0")
DD_MBPS=$(mbps "$SIZE" "$DD_S")
DD2_MBPS=$(mbps "$SIZE" "$DD2_S")
if [ -n "$SRV_MS" ]; then
    SRV_S=$(awk -v m="$SRV_MS" 'BEGIN { printf "%.3f", m / 1000 }')
    SRV_SRC="worker log line"
else
    SRV_S=$CURL_TIME
    SRV_SRC="curl time_total (no worker log line found)"
fi
SRV_MBPS=$(mbps "${SRV_IN:-$UP_BYTES}" "$SRV_S")

echo
echo "== results (${MIB} MiB shard, one worker, pid $WORKER)"
printf '%-44s %s\n' "create status" "$HTTP_CODE (request id $RID)"
printf '%-44s %s s\n' "upload wall time (curl start to answer)" "$(f2 "$WALL")"
printf '%-44s %s s, %s MB/s client-side (%s bytes sent)\n' "curl time_total" "$(f2 "$CURL_TIME")" \
    "$(awk -v x="$CURL_SPEED" 'BEGIN { printf "%.0f", x / 1e6 }')" "$UP_BYTES"
printf '%-44s %s s for %s bytes read = %s MB/s (%s)\n' "server-side: worker request time" \
    "$(f2 "$SRV_S")" "${SRV_IN:-?}" "$SRV_MBPS" "$SRV_SRC"
printf '%-44s request %s s, upstream %s s\n' "nginx access log" "${NGX_T:-?}" "${NGX_UP:-?}"
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "?" }'; }
printf '%-44s %s s = %s MB/s\n' "ceiling: dd bs=1M conv=fsync, before upload" "$(f2 "$DD_S")" "$DD_MBPS"
printf '%-44s %s s = %s MB/s\n' "dd again after, into just-freed pages" "$(f2 "$DD2_S")" "$DD2_MBPS"
printf '%-44s %s (of the just-freed dd: %s)\n' "server-side / ceiling" "$(pct "$SRV_MBPS" "$DD_MBPS")" \
    "$(pct "$SRV_MBPS" "$DD2_MBPS")"
printf '%-44s VmRSS %s MiB, VmHWM %s MiB (since start)\n' "worker before" "$(mib "$RSS0")" "$(mib "$HWM0")"
printf '%-44s %s MiB (VmHWM reset before upload: %s)\n' "worker peak VmHWM during upload" "$(mib "$HWM1")" "$HWM_RESET"
printf '%-44s VmRSS %s MiB, VmHWM %s MiB (max of %s samples, every %s s)\n' "worker peak sampled during upload" \
    "$(mib "$PEAK_RSS")" "$(mib "$PEAK_HWM")" "$NSAMPLES" "$SAMPLE_INTERVAL"
printf '%-44s VmRSS %s MiB\n' "worker after" "$(mib "$RSS1")"
printf '%-44s %s open (already unlinked), up to %s bytes; complete at %s s; closed at %s s; files left in client_body/: %s; "buffered to a temporary file" warnings: %s\n' \
    "nginx request body temp file" "$NB_FILES" "$NB_MAX" "${NB_FULL_AT:-?}" "${NB_GONE_AT:-?}" "$LEFT_BODY" "$NGX_WARN"
printf '%-44s first bytes at %s s; left after: %s\n' "worker temp files in data/tmp" "${UP_FIRST_AT:-?}" "$LEFT_UP"
printf '%-44s %s (files[] size %s, sha256 %s…; blob %s bytes)\n' "blob check vs sha256sum of source" \
    "$BLOB_OK" "$R_SIZE" "${R_SHA:0:16}" "$B_SIZE"
[ "$BLOB_OK" = ok ] || die "the stored blob does not match the source"
