# The fake Grafana of the tests (scripts/fake-grafana.py), standing in for grafana/grafana-oss in scripts/test-deploy:
# it validates every provisioning call remas makes and signs in with GF_SECURITY_ADMIN_USER/PASSWORD.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 wget \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/fake-grafana.py /app/fake-grafana.py
ENTRYPOINT ["/bin/sh", "-c", "exec python3 /app/fake-grafana.py --bind 0.0.0.0 --port 3000 --user \"$GF_SECURITY_ADMIN_USER\" --password \"$GF_SECURITY_ADMIN_PASSWORD\""]
