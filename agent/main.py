"""quantum-ovs-agent --config-file etc/quantum-ovs-agent.ini"""

import logging
import signal
import sys

from agent import startup
from quantum_ovs import codecache


def main(argv=None):
    # The collector waits until the agent is ready (agent/startup.py); the
    # imports are here, after it is paused.
    startup.pause_gc()
    # ... and the dataclasses' methods come compiled (quantum_ovs.codecache)
    codecache.enable()
    from agent import config, sync_client
    from agent.settings import Settings
    from quantum_ovs import log

    conf = config.make_conf(sys.argv[1:] if argv is None else argv)
    log.setup(conf, "quantum-ovs-agent")
    settings = Settings.from_conf(conf)
    # The server builds this host's view while the rest of the agent is
    # imported and started (agent.daemon and what it needs: ~0.1 s).
    first = sync_client.FirstPoll(sync_client.SyncClient.for_settings(settings))
    # ... and the host's OVSDB contents come in meanwhile too.
    ovsdb = startup.EarlyOvsdb(settings.ovsdb)
    from agent.daemon import Agent

    startup.freeze_imports()
    codecache.save()
    agent = Agent(settings, first_poll=first, ovsdb=ovsdb)
    agent.start()
    logging.getLogger("quantum_ovs.agent").info(
        "quantum-ovs-agent for host %s started; OpenFlow on %s", agent.s.host,
        agent.channel.target)
    done = []
    signal.signal(signal.SIGTERM, lambda *a: done.append(1))
    signal.signal(signal.SIGINT, lambda *a: done.append(1))
    while not done:
        signal.pause()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
