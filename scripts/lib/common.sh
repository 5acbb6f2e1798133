# Shared helpers for scripts/run, scripts/test and scripts/bench. Source it; do not run it.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }

# Installs Debian packages that are missing (root: apt-get directly; otherwise sudo if available).
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Python virtual environment under .data/venv (kept between runs, ignored by git) holding PyPI packages the
# scripts need; prints its python. Debian's python3-venv provides the venv module.
ensure_venv() {
    ensure_packages python3-venv
    local venv="$REPO_ROOT/.data/venv"
    [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv" >&2
    local missing=()
    for pkg in "$@"; do
        "$venv/bin/python" -m pip show -q "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing from PyPI into .data/venv: ${missing[*]}"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}" >&2
    fi
    echo "$venv/bin/python"
}

pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -n "$dir" ] || { echo "PostgreSQL server binaries not found" >&2; return 1; }
    echo "$dir"
}

# PostgreSQL refuses to run as root: when we are root, run its binaries as the 'postgres' user.
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# smtp_test_server_start DIR USER PASSWORD: the SMTP test server (scripts/smtp-test-server.py, aiosmtpd: STARTTLS and
# implicit TLS, AUTH as USER/PASSWORD) with a certificate made for this run (DIR/smtp.crt, for SMTP_CA_FILE); mail lands
# in DIR/mail. Sets SMTP_PID, SMTP_STARTTLS_PORT and SMTP_TLS_PORT; fails when the server does not come up.
smtp_test_server_start() {
    local dir="$1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/smtp.key" -out "$dir/smtp.crt" 2>/dev/null
    SMTP_STARTTLS_PORT="$(free_port)"
    SMTP_TLS_PORT="$(free_port)"
    mkdir -p "$dir/mail"
    /usr/bin/python3 "$REPO_ROOT/scripts/smtp-test-server.py" "$dir/mail" "$SMTP_STARTTLS_PORT" "$SMTP_TLS_PORT" "$dir/smtp.crt" \
        "$dir/smtp.key" "$2" "$3" >"$dir/smtp.log" 2>&1 &
    SMTP_PID=$!
    for _ in $(seq 1 100); do [ -f "$dir/mail/ready" ] && return 0; sleep 0.1; done
    cat "$dir/smtp.log" >&2
    echo "SMTP test server did not start" >&2
    return 1
}

# pg_start DIR PORT [extra postgres -c settings...]: initialises DIR on first use and starts a server on 127.0.0.1:PORT
# with trust authentication (loopback only) and a database and owner role named 'remas'.
pg_start() {
    local dir="$1" port="$2"; shift 2
    local bin; bin="$(pg_bindir)"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg_user "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; return 1; }
    fi
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=${PG_MAX_CONNECTIONS:-300}"
    for extra in "$@"; do opts="$opts -c $extra"; done
    as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    as_pg_user "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<'SQL' >/dev/null
SELECT 'CREATE ROLE remas LOGIN CREATEDB' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'remas') \gexec
SELECT 'CREATE DATABASE remas OWNER remas' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'remas') \gexec
SQL
}

pg_stop() {
    local dir="$1"
    local bin; bin="$(pg_bindir)"
    [ -f "$dir/data/postmaster.pid" ] && as_pg_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# Builds the release binary and prints its path. The Swift runtime and Foundation are linked in statically, so the same
# binary runs on a host without the toolchain and in the slim container image (docker/Dockerfile, target prebuilt).
build_release() {
    swift build -c release --static-swift-stdlib --product remas >&2
    echo "$(swift build -c release --static-swift-stdlib --show-bin-path)/remas"
}

# The Swift toolchain is part of the machine image; say so clearly if it is not on PATH.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        [ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
    fi
    command -v swift >/dev/null 2>&1 || { echo "swift not found (expected the toolchain under /opt/swift)" >&2; exit 1; }
}
