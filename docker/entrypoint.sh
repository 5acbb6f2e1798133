#!/bin/sh
# `serve` (the default command) migrates the database, creates the default groups and the administrator when they
# are missing (password from REMAS_ADMIN_PASSWORD, or a generated one printed once to the log), then serves.
# Any other command runs as `remas <command>`, e.g. `docker compose run --rm remas events`.
set -e
if [ "${1:-serve}" = "serve" ]; then
    remas migrate
    remas seed
    exec remas serve
fi
exec remas "$@"
