# Alertmanager from Debian's package on the local debootstrap base, standing in for prom/alertmanager in
# scripts/test-deploy: same entrypoint (the compose command gives the flags) and wget for the healthcheck.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus-alertmanager wget \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o prometheus -g prometheus /alertmanager
USER prometheus
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
