#!/usr/bin/env bash
# Installs the external tools that some tests need, when they are missing.
# Idempotent and quiet; run by `make test` (and so by CI) on every machine.
set -euo pipefail
need_apt=()
# promtool (Debian package prometheus) for metrics, rules and config checks.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${need_apt[*]}"
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
        # the Debian package starts services; the tests start their own on 127.0.0.1
        for svc in prometheus prometheus-node-exporter; do
            (service "$svc" stop || systemctl stop "$svc") >/dev/null 2>&1 || true
        done
    else
        echo "warning: cannot install ${need_apt[*]} (not root or no apt-get); tests that need them will skip" >&2
    fi
fi
# hadolint, kubectl (kustomize), kubernetes-validate, yamllint and the CRD models for tests/deploy.
bash "$(dirname "$0")/install-deploy-tools.sh"
