# PostgreSQL from Debian's package on the local debootstrap base, standing in for the postgres image of compose.yaml
# in scripts/test-deploy. It honours what the official image does for the stack: POSTGRES_USER/PASSWORD/DB on first
# start, data in /var/lib/postgresql/data, password logins over the network, pg_isready.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres /var/lib/postgresql/data /var/run/postgresql \
    && ln -s /usr/lib/postgresql/*/bin/* /usr/local/bin/
COPY docker/test/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
USER postgres
ENV PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["postgres-entrypoint"]
