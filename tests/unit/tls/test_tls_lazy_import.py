"""cryptography (~8 MB resident) is loaded only when a CA is: a proxy without interception never pays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import datetime as dt, sys
from proxy.config import ForwardSettings
from proxy.server.forward import ForwardProxy  # the proxy's own import of proxy.tls
from proxy.tls import LeafContexts, ca_paths, load_or_create_ca
print("cryptography" in sys.modules)
ca, created = load_or_create_ca(ca_paths(ForwardSettings()), dt.datetime.now(dt.UTC))
print("cryptography" in sys.modules, created)
context = LeafContexts(ca).context_for("s3.amazonaws.com")
print(type(context).__name__)
"""


def test_cryptography_is_imported_with_the_ca_not_with_the_proxy(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["False", "True True", "SSLContext"]
    assert (tmp_path / "sigwatch" / "sigwatch-ca.pem").is_file()
