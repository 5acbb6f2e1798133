#!/bin/sh
# Installs and starts the two exporters on a cluster node (Debian or Ubuntu, systemd), from the distribution's
# packages: prometheus-node-exporter (port 9100) and prometheus-process-exporter (port 9256, one group per uid).
# Run as root on every node, then add the node's job pair to prometheus.yml with `node: <remas node name>`.
set -eu
[ "$(id -u)" -eq 0 ] || { echo "install-exporters.sh: run as root" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"

DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-node-exporter prometheus-process-exporter
install -D -m 0644 "$here/process-exporter.yml" /etc/prometheus/remas-process-exporter.yml
install -D -m 0644 "$here/systemd/prometheus-process-exporter.service.d/remas.conf" \
    /etc/systemd/system/prometheus-process-exporter.service.d/remas.conf
systemctl daemon-reload
systemctl enable prometheus-node-exporter prometheus-process-exporter
systemctl restart prometheus-node-exporter prometheus-process-exporter

echo "node exporter:    http://$(hostname -f):9100/metrics"
echo "process exporter: http://$(hostname -f):9256/metrics (groupname = numeric uid)"
echo "Now add this node's two jobs to prometheus.yml, with the label node: <its name in remas>."
