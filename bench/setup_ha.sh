#!/usr/bin/env bash
# Install what the HA tests and benchmarks run for real (tests/ha, the PostgreSQL backend
# of tests/bridge, bench/ha_load.py): Debian's PostgreSQL server binaries and HAProxy.
# Only when missing; and keep their system services off: the tests start their own
# private servers on 127.0.0.1 (sandbox/postgres_cluster.py, bench/ha_pair.py).
# Idempotent; needs root (CI and the dev machines run as root).
set -euo pipefail

has_postgres() { compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; }
has_haproxy() { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; }

missing=()
has_postgres || missing+=(postgresql)
has_haproxy || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A package just installed starts its system-wide instance where services may start
# (PostgreSQL's cluster "main" on port 5432, HAProxy with its default config): stop and
# disable those (never one that was there before); ignore failures on machines without
# systemd or sysvinit scripts.
for service in "${missing[@]}"; do
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop "$service" >/dev/null 2>&1 || true
        systemctl disable "$service" >/dev/null 2>&1 || true
    fi
    if [ -x "/etc/init.d/$service" ]; then
        "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
done

ls -d /usr/lib/postgresql/*/bin | tail -1
haproxy -v 2>&1 | head -1 || /usr/sbin/haproxy -v 2>&1 | head -1
