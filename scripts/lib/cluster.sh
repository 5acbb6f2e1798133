# Several remas replicas on one PostgreSQL behind nginx on loopback: shared by scripts/cluster, scripts/test-faults and
# scripts/bench. Source after common.sh. Expects BIN (the release binary), DATABASE_URL, SECRET_KEY and the other
# settings exported, and CLUSTER_DIR (a directory of the caller's), and CLUSTER_PORT (nginx's). Replica i listens on the
# Unix socket $CLUSTER_DIR/replica-i.sock (SOCKET_PATH; nginx runs on the same host, so no TCP stack between them).

CLUSTER_REPLICAS="${CLUSTER_REPLICAS:-3}"
CLUSTER_HEALTH_PID=""

replica_socket() { echo "$CLUSTER_DIR/replica-$1.sock"; }
replica_curl() { # replica_curl I PATH: on the replica's socket, or its port if it has one (replica_start I PORT)
    if [ -f "$CLUSTER_DIR/replica-$1.port" ]; then curl -sf -m 1 "http://127.0.0.1:$(cat "$CLUSTER_DIR/replica-$1.port")$2"
    else curl -sf -m 1 --unix-socket "$(replica_socket "$1")" "http://localhost$2"; fi
}
replica_pid() { cat "$CLUSTER_DIR/replica-$1.pid" 2>/dev/null || true; }

# The replicas share this host's cores and its PostgreSQL: unless SERVER_THREADS / DB_MAX_CONNECTIONS are set, each
# gets its share of event-loop threads (at least 1) and of the connections one server would open (2 x cores, at least
# 2 each). More backends than that only make PostgreSQL switch between them: measured on 2 cores, 3 replicas with 4
# connections each spent ~20 % more CPU per GET /node than with 2 each.
replica_threads() { local n=$(( $(nproc) / CLUSTER_REPLICAS )); echo $(( n > 0 ? n : 1 )); }
replica_connections() { local n=$(( (2 * $(nproc) + CLUSTER_REPLICAS - 1) / CLUSTER_REPLICAS )); echo $(( n > 2 ? n : 2 )); }

# replica_start I [PORT]: replica I on its socket, or on 127.0.0.1:PORT (scripts/bench reaches such replicas directly,
# without nginx, to measure what nginx costs).
replica_start() {
    local listen=(SOCKET_PATH="$(replica_socket "$1")")
    if [ -n "${2:-}" ]; then listen=(HOST=127.0.0.1 PORT="$2" SOCKET_PATH=); echo "$2" >"$CLUSTER_DIR/replica-$1.port"; fi
    # nginx reaches the replicas on their sockets: X-Forwarded-For from a socket peer names the client (login throttling).
    env "${listen[@]}" TRUSTED_PROXIES="${TRUSTED_PROXIES:-unix}" SERVER_THREADS="${SERVER_THREADS:-$(replica_threads)}" \
        DB_MAX_CONNECTIONS="${DB_MAX_CONNECTIONS:-$(replica_connections)}" "$BIN" serve >>"$CLUSTER_DIR/replica-$1.log" 2>&1 &
    echo $! >"$CLUSTER_DIR/replica-$1.pid"
}

replica_wait_ready() {
    for _ in $(seq 1 200); do replica_curl "$1" /ready >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "replica $1 did not become ready; its log:" >&2
    tail -20 "$CLUSTER_DIR/replica-$1.log" >&2
    return 1
}

replica_kill9() { local pid; pid="$(replica_pid "$1")"; [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }

# Writes the upstream servers of deploy/nginx/remas.conf: every replica, `down` when given in $1 (space separated).
nginx_render() {
    local down=" ${1:-} " servers="" i
    for i in $(seq 1 "$CLUSTER_REPLICAS"); do
        local flag=""
        [[ "$down" == *" $i "* ]] && flag=" down"
        servers+="    server unix:$(replica_socket "$i") max_fails=1 fail_timeout=2s$flag;\n"
    done
    awk -v servers="$servers" -v port="$CLUSTER_PORT" '
        /remas-upstream-begin/ { printf "%s", servers; skip = 1; next }
        /remas-upstream-end/ { skip = 0; next }
        skip { next }
        /# remas-listen/ { print "    listen 127.0.0.1:" port ";"; next }
        { print }' "$REPO_ROOT/deploy/nginx/remas.conf" | sed 's/\\n/\n/g' >"$CLUSTER_DIR/remas-site.conf"
}

nginx_start() {
    mkdir -p "$CLUSTER_DIR/nginx"
    nginx_render ""
    # One worker: here nginx shares the cores with the replicas and PostgreSQL, and a single worker handles more
    # events per wake-up (GET /node through nginx: 80-84 % of one replica against 76-78 % with a worker per core, in
    # alternating 2-s rounds). A load balancer on a host of its own keeps `auto`.
    cat >"$CLUSTER_DIR/nginx.conf" <<NGINX
worker_processes 1;
pid $CLUSTER_DIR/nginx/nginx.pid;
error_log $CLUSTER_DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $CLUSTER_DIR/nginx/body;
    proxy_temp_path $CLUSTER_DIR/nginx/proxy;
    include $CLUSTER_DIR/remas-site.conf;
}
NGINX
    nginx -c "$CLUSTER_DIR/nginx.conf" -p "$CLUSTER_DIR/nginx" -t -q
    nginx -c "$CLUSTER_DIR/nginx.conf" -p "$CLUSTER_DIR/nginx"
}

nginx_reload() { nginx -c "$CLUSTER_DIR/nginx.conf" -p "$CLUSTER_DIR/nginx" -s reload; }
nginx_stop() { [ -f "$CLUSTER_DIR/nginx/nginx.pid" ] && nginx -c "$CLUSTER_DIR/nginx.conf" -p "$CLUSTER_DIR/nginx" -s quit 2>/dev/null || true; }

# The active health check nginx lacks: GET /ready of every replica each second; a replica that fails it is marked
# `down` in the upstream (nginx reloaded on every change) until it passes again. When every replica fails (PostgreSQL
# itself is down) none is marked: each still answers 503 with a detail, which beats nginx having nowhere to go.
health_loop() {
    local last="" i
    while true; do
        local down="" failing=0
        for i in $(seq 1 "$CLUSTER_REPLICAS"); do
            replica_curl "$i" /ready >/dev/null 2>&1 || { down+="$i "; failing=$((failing + 1)); }
        done
        [ "$failing" -eq "$CLUSTER_REPLICAS" ] && down=""
        if [ "$down" != "$last" ]; then
            nginx_render "$down"
            nginx_reload 2>/dev/null || true
            echo "$(date +%T) replicas down: ${down:-none}" >>"$CLUSTER_DIR/health.log"
            last="$down"
        fi
        sleep 1
    done
}

cluster_start() {
    ensure_packages nginx curl
    local i
    chmod 755 "$CLUSTER_DIR"  # nginx's workers (another user) reach the sockets through it
    for i in $(seq 1 "$CLUSTER_REPLICAS"); do replica_start "$i"; done
    for i in $(seq 1 "$CLUSTER_REPLICAS"); do replica_wait_ready "$i"; done
    nginx_start
    health_loop &
    CLUSTER_HEALTH_PID=$!
}

cluster_stop() {
    [ -n "$CLUSTER_HEALTH_PID" ] && kill "$CLUSTER_HEALTH_PID" 2>/dev/null || true
    nginx_stop
    local i pid
    for i in $(seq 1 "$CLUSTER_REPLICAS"); do
        pid="$(replica_pid "$i")"
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for i in $(seq 1 "$CLUSTER_REPLICAS"); do
        pid="$(replica_pid "$i")"
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
}
