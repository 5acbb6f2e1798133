# A highly available PostgreSQL on loopback as operators run it: one etcd member and Patroni members (Debian's
# `etcd-server` and `patroni`), each member a PostgreSQL of its own, the first standby synchronous. Shared by
# scripts/test-failover and scripts/bench. Source after common.sh; set PATRONI_DIR (a directory of the caller's).
# Everything runs as the postgres user (PostgreSQL refuses root) and listens on 127.0.0.1 only.

PATRONI_MEMBERS=0
PATRONI_ETCD_PORT=""
PATRONI_PG_PORTS=()
PATRONI_API_PORTS=()

# patroni_run NAME COMMAND...: COMMAND in the background as the postgres user, its pid (exec'd, so the real process)
# in $PATRONI_DIR/NAME.pid, its output in $PATRONI_DIR/NAME.log.
patroni_run() {
    local name="$1"; shift
    local quoted; quoted="$(printf '%q ' "$@")"
    as_pg_user bash -c "echo \$\$ >'$PATRONI_DIR/$name.pid'; exec $quoted >>'$PATRONI_DIR/$name.log' 2>&1" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 50); do [ -s "$PATRONI_DIR/$name.pid" ] && return 0; sleep 0.1; done
    echo "$name did not start" >&2
    return 1
}

# patroni_api I PATH: GET on member I's REST API (empty when it does not answer).
patroni_api() { curl -s -m 2 "http://127.0.0.1:${PATRONI_API_PORTS[$(($1 - 1))]}$2" 2>/dev/null || true; }

# patroni_start MEMBERS [synchronous: true|false]: etcd, then MEMBERS members; returns once one leads and every other
# streams from it (the first of them as the synchronous standby when synchronous).
patroni_start() {
    local members="$1" synchronous="${2:-true}"
    ensure_packages patroni etcd-server curl
    PATRONI_MEMBERS="$members"
    mkdir -p "$PATRONI_DIR"
    chmod 755 "$PATRONI_DIR"
    if [ "$(id -u)" -eq 0 ]; then id -u postgres >/dev/null 2>&1 || as_pg_user true; chown postgres:postgres "$PATRONI_DIR"; fi
    PATRONI_ETCD_PORT="$(free_port)"
    local peer; peer="$(free_port)"
    patroni_run etcd /usr/bin/etcd --name remas-test --data-dir "$PATRONI_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$PATRONI_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$PATRONI_ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "remas-test=http://127.0.0.1:$peer" --initial-cluster-state new
    local ok=""
    for _ in $(seq 1 100); do
        curl -sf -m 1 "http://127.0.0.1:$PATRONI_ETCD_PORT/health" | grep -q '"true"' && { ok=1; break; }
        sleep 0.1
    done
    [ -n "$ok" ] || { echo "etcd did not start:" >&2; tail -20 "$PATRONI_DIR/etcd.log" >&2; return 1; }
    local bin; bin="$(pg_bindir)"
    PATRONI_PG_PORTS=()
    PATRONI_API_PORTS=()
    local i
    for i in $(seq 1 "$members"); do
        PATRONI_PG_PORTS+=("$(free_port)")
        PATRONI_API_PORTS+=("$(free_port)")
    done
    for i in $(seq 1 "$members"); do
        local pg="${PATRONI_PG_PORTS[$((i - 1))]}" api="${PATRONI_API_PORTS[$((i - 1))]}"
        # Failover within ~20 s of a leader's death: its lock lives `ttl` seconds (Patroni's minimum, 20) and the
        # standby looks every `loop_wait`; loop_wait + 2 × retry_timeout ≤ ttl, as Patroni requires.
        cat >"$PATRONI_DIR/member$i.yml" <<EOF
scope: remas
namespace: /remas-test/
name: member$i
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$api
  connect_address: 127.0.0.1:$api
etcd3:
  hosts: 127.0.0.1:$PATRONI_ETCD_PORT
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: $synchronous
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 200
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 8
        max_replication_slots: 8
        wal_keep_size: 64MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - auth: trust
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $PATRONI_DIR/member$i
  bin_dir: $bin
  pgpass: $PATRONI_DIR/pgpass$i
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: replicator
      password: replicator
  parameters:
    unix_socket_directories: $PATRONI_DIR
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
EOF
        patroni_run "member$i" /usr/bin/patroni "$PATRONI_DIR/member$i.yml"
        # The first member bootstraps the cluster before the others join and clone it.
        if [ "$i" -eq 1 ]; then patroni_wait_leader 120 >/dev/null || return 1; fi
    done
    patroni_wait_streaming "$((members - 1))" "$synchronous" 120
}

# patroni_cluster: the cluster as a member that answers sees it (Patroni's /cluster JSON).
patroni_cluster() {
    local i out
    for i in $(seq 1 "$PATRONI_MEMBERS"); do
        out="$(patroni_api "$i" /cluster)"
        [ -n "$out" ] && { echo "$out"; return 0; }
    done
    return 1
}

# patroni_leader: the number of the member that leads and runs, or nothing.
patroni_leader() {
    patroni_cluster 2>/dev/null | python3 -c '
import json, sys
try:
    members = json.load(sys.stdin).get("members", [])
except ValueError:
    sys.exit(0)
for m in members:
    if m.get("role") == "leader" and m.get("state") == "running":
        print(m["name"].replace("member", ""))' || true
}

# patroni_wait_leader SECONDS: waits for a running leader whose PostgreSQL accepts writes; prints its number.
patroni_wait_leader() {
    local deadline=$(( $(date +%s) + $1 )) leader
    while [ "$(date +%s)" -lt "$deadline" ]; do
        leader="$(patroni_leader)"
        if [ -n "$leader" ] && [ "$(as_pg_user "$(pg_bindir)/psql" -h 127.0.0.1 -p "${PATRONI_PG_PORTS[$((leader - 1))]}" -U postgres \
                -d postgres -Atc 'SHOW transaction_read_only' 2>/dev/null)" = off ]; then
            echo "$leader"
            return 0
        fi
        sleep 0.5
    done
    echo "no Patroni leader within $1 s; the members' logs:" >&2
    for f in "$PATRONI_DIR"/member*.log; do echo "--- $f" >&2; tail -15 "$f" >&2; done
    return 1
}

# patroni_wait_streaming N SYNCHRONOUS SECONDS: waits until N members stream from the leader (one of them as the
# synchronous standby when SYNCHRONOUS is true).
patroni_wait_streaming() {
    local want="$1" synchronous="$2" deadline=$(( $(date +%s) + $3 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if patroni_cluster 2>/dev/null | python3 -c '
import json, sys
want, synchronous = int(sys.argv[1]), sys.argv[2] == "true"
members = json.load(sys.stdin).get("members", [])
streaming = [m for m in members if m.get("role") in ("replica", "sync_standby") and m.get("state") in ("streaming", "running")]
sync = [m for m in streaming if m.get("role") == "sync_standby"]
leaders = [m for m in members if m.get("role") == "leader" and m.get("state") == "running"]
sys.exit(0 if leaders and len(streaming) >= want and (not synchronous or want == 0 or sync) else 1)' "$want" "$synchronous"; then
            return 0
        fi
        sleep 0.5
    done
    echo "the Patroni members did not all stream within $3 s:" >&2
    patroni_cluster >&2 || true
    for f in "$PATRONI_DIR"/member*.log; do echo "--- $f" >&2; tail -15 "$f" >&2; done
    return 1
}

# patroni_url DATABASE: a libpq multi-host URL of every member, for the writable one.
patroni_url() {
    local hosts="" port
    for port in "${PATRONI_PG_PORTS[@]}"; do hosts+="${hosts:+,}127.0.0.1:$port"; done
    echo "postgresql://remas@$hosts/$1?target_session_attrs=read-write"
}

# patroni_kill9 I: member I's machine dies: its Patroni and its PostgreSQL postmaster are killed with SIGKILL (the
# postmaster's children follow it).
patroni_kill9() {
    local dir="$PATRONI_DIR/member$1" patroni postmaster
    patroni="$(cat "$PATRONI_DIR/member$1.pid" 2>/dev/null || true)"
    postmaster="$(head -1 "$dir/postmaster.pid" 2>/dev/null || true)"
    [ -n "$patroni" ] && kill -9 "$patroni" 2>/dev/null || true
    [ -n "$postmaster" ] && kill -9 "$postmaster" 2>/dev/null || true
    for _ in $(seq 1 50); do
        { [ -z "$postmaster" ] || ! kill -0 "$postmaster" 2>/dev/null; } && break
        sleep 0.1
    done
}

# patroni_stop: every member (Patroni stops its PostgreSQL), then etcd; whatever is left is killed.
patroni_stop() {
    local f pid
    for f in "$PATRONI_DIR"/member*.pid; do
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 1 100); do
        local alive=""
        for f in "$PATRONI_DIR"/member*.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    for f in "$PATRONI_DIR"/member*.pid "$PATRONI_DIR"/etcd.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    local dir
    for dir in "$PATRONI_DIR"/member*/; do
        [ -f "$dir/postmaster.pid" ] && kill -9 "$(head -1 "$dir/postmaster.pid")" 2>/dev/null || true
    done
    return 0
}
