"""make demo: the server on SQLite, driven by the real openstack CLI.

Starts quantum-ovs-server on 127.0.0.1:9696 (override with --port), creates
a network, a subnet and two ports with the `openstack` CLI, lists them,
and leaves the server running until Ctrl-C (or, with --once, stops it and
removes everything it made).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)


def say(msg):
    print(msg, flush=True)


class Demo:
    def __init__(self, port, keep_dir=False):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="qovs-demo-")
        self.server = None
        self.keep_dir = keep_dir

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start_server(self):
        conf = os.path.join(self.dir, "quantum-ovs.conf")
        with open(conf, "w") as f:
            f.write(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {self.port}\n"
                    f"policy_file = {os.path.join(ROOT, 'etc', 'policy.json')}\n"
                    f"[database]\nconnection = sqlite:///{self.dir}/quantum-ovs.sqlite\n")
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        started = time.monotonic()
        self.server = subprocess.Popen([os.path.join(BIN, "quantum-ovs-server"),
                                        "--config-file", conf],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        while time.monotonic() - started < 30:
            if self.server.poll() is not None:
                raise SystemExit("the server exited; see " + self.log.name + ":\n"
                                 + open(self.log.name).read()[-2000:])
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not answer within 30 s")
        say(f"server up on {self.endpoint} in {time.monotonic() - started:.2f} s "
            f"(log: {self.log.name})")

    def openstack(self, *args):
        cmd = [os.path.join(BIN, "openstack"), "--os-auth-type", "none",
               "--os-endpoint", self.endpoint, *args]
        started = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"openstack {' '.join(args)} failed:\n{out.stderr}")
        ms = (time.monotonic() - started) * 1000
        return (json.loads(out.stdout) if "-f" in args and "json" in args else out.stdout), ms

    def run(self):
        self.start_server()
        net, ms = self.openstack("network", "create", "demo-net", "-f", "json")
        say(f"network  {net['name']:<10} {net['id']}  ({ms:.0f} ms with the CLI)")
        sub, ms = self.openstack("subnet", "create", "--network", "demo-net",
                                 "--subnet-range", "10.20.0.0/24", "demo-subnet", "-f", "json")
        say(f"subnet   {sub['name']:<10} {sub['cidr']}  gateway {sub['gateway_ip']}")
        for name in ("vm-a", "vm-b"):
            port, ms = self.openstack("port", "create", "--network", "demo-net", name,
                                      "-f", "json")
            ips = ", ".join(f["ip_address"] for f in port["fixed_ips"])
            say(f"port     {name:<10} {port['mac_address']}  {ips}  {port['status']}")
        listing, _ = self.openstack("port", "list", "--network", "demo-net")
        say(listing.rstrip())

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--once", action="store_true", help="run once and clean up")
    p.add_argument("--port", type=int, default=9696)
    args = p.parse_args()
    demo = Demo(args.port)
    try:
        demo.run()
        if args.once:
            say("demo OK")
            return 0
        say(f"\nThe server keeps running on {demo.endpoint}; try\n"
            f"  {BIN}/openstack --os-auth-type none --os-endpoint {demo.endpoint} network list\n"
            "Ctrl-C stops it.")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
