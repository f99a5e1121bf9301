"""etc/quantum-ovs.conf.sample is generated from the code's options."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



@pytest.mark.parametrize("namespace, sample", [
    ("quantum_ovs", "quantum-ovs.conf.sample"),
    ("quantum_ovs.agent", "quantum-ovs-agent.ini.sample"),
])
def test_sample_config_is_current(tmp_path, namespace, sample):
    out = tmp_path / "sample.conf"
    gen = os.path.join(os.path.dirname(sys.executable), "oslo-config-generator")
    subprocess.run([gen, "--namespace", namespace, "--output-file", str(out)],
                   check=True, timeout=60)
    with open(os.path.join(ROOT, "etc", sample)) as f:
        committed = f.read()
    assert out.read_text() == committed, f"etc/{sample} is stale: run `make genconfig`"
