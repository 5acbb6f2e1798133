# Prometheus from Debian's package on the local debootstrap base, standing in for prom/prometheus in
# scripts/test-deploy: same entrypoint (the compose command gives the flags) and wget for the healthcheck.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o prometheus -g prometheus /prometheus
USER prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
