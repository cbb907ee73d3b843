#!/usr/bin/env bash
# Installs what the benchmark harness (tests/benchmarks, `make bench`) needs, when it is missing.
# Idempotent and quiet. Never run by `make test`: the harness is not part of the pass/fail suite.
#
#   Debian: wrk (load generator), nginx-light (a contender: proxy_pass with keepalive).
#   PyPI, in a SEPARATE virtualenv (.venv-bench): mitmproxy (a contender) and py-spy (the profiler).
#   mitmproxy pins its dependencies tightly (11.x: cryptography<44.1, its own h11/h2/tornado/flask
#   versions; 12.x needs Python 3.12), which would fight the project's .venv (cryptography 50): it lives
#   apart, and the harness only runs its `mitmdump` binary.
#
# Anything that cannot be installed is reported; the harness then skips that contender (or, without
# wrk, falls back to its own Python load generator) and says so in its table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BENCH_VENV=${BENCH_VENV:-.venv-bench}

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing (apt): ${need_apt[*]}"
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
        # the Debian package starts nginx on port 80; the harness starts its own on 127.0.0.1
        (service nginx stop || systemctl stop nginx) >/dev/null 2>&1 || true
    else
        echo "warning: cannot install ${need_apt[*]} (not root or no apt-get); the harness skips what needs them" >&2
    fi
fi

if [ ! -x "$BENCH_VENV/bin/python" ]; then
    echo "creating $BENCH_VENV (mitmproxy, py-spy)"
    "$PYTHON" -m venv "$BENCH_VENV"
fi
# keeps the bench virtualenv out of git without touching the project's .gitignore
[ -f "$BENCH_VENV/.gitignore" ] || echo '*' >"$BENCH_VENV/.gitignore"
need_pip=()
[ -x "$BENCH_VENV/bin/mitmdump" ] || need_pip+=(mitmproxy)
[ -x "$BENCH_VENV/bin/py-spy" ] || need_pip+=(py-spy)
if ((${#need_pip[@]})); then
    echo "installing (pip, $BENCH_VENV): ${need_pip[*]}"
    "$BENCH_VENV/bin/pip" install --quiet --disable-pip-version-check "${need_pip[@]}" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) ||
        echo "warning: pip could not install ${need_pip[*]}; the harness skips what needs them" >&2
fi
