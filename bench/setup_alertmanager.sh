#!/usr/bin/env bash
# Install Prometheus Alertmanager for bench/compare_alertmanager.py, from Debian's
# package (the only source the project allows), and keep its system service off:
# the benchmark runs its own instance on loopback with its own config and data dir.
# Idempotent; needs root (CI and the dev machines run as root).
set -euo pipefail

if command -v prometheus-alertmanager >/dev/null 2>&1; then
    echo "prometheus-alertmanager already installed: $(command -v prometheus-alertmanager)"
else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends prometheus-alertmanager
fi

# The package enables (and, where services may start, starts) a system-wide
# instance listening on all interfaces. Stop and disable it; ignore failures on
# machines without systemd or sysvinit scripts.
if command -v systemctl >/dev/null 2>&1; then
    systemctl stop prometheus-alertmanager >/dev/null 2>&1 || true
    systemctl disable prometheus-alertmanager >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/prometheus-alertmanager ]; then
    /etc/init.d/prometheus-alertmanager stop >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d prometheus-alertmanager disable >/dev/null 2>&1 || true
fi

prometheus-alertmanager --version 2>&1 | head -1
