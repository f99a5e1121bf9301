"""The flow compiler: a host's view of the logical model in, the complete
OpenFlow table of its integration bridge out; any model change in, the
minimal FlowDiff out.  Pure: standard library and quantum_ovs.model only.

Full compile::

    from quantum_ovs.compiler.engine import Engine, compile_flows
    flows = compile_flows(host_view)            # frozenset[Flow]
    engine = Engine.from_view(host_view)        # keep it for increments

Incremental (each call returns the FlowDiff to apply to the switch)::

    engine.apply(delta)                         # a model.Delta
    engine.update(new_host_view)                # diffed object by object
    engine.set_chassis(chassis)                 # VIF / tunnel / patch ofports
    engine.flows(); engine.view(); engine.stats; engine.alloc
    engine.describe() / engine.dot()            # the owner graph (OWNER_KINDS)

Tracing::

    from quantum_ovs.compiler.trace import trace, Tracer
    t = trace(flows, {"in_port": 5, "eth_src": ..., ...}, ct_state=CT_NEW)
    t.ports, t.outputs, t.controller, t.commits, t.steps, t.format()

Modules: flow (the vocabulary shared with the agent's encoder), pipeline
(tables, registers, the contract), cookies (owner in every cookie),
rules/ (flow generators per owner: static, network, port, acl,
router), desired (the owner-indexed table),
engine (dependencies and increments), trace (the packet tracer), synth
(synthetic host views for tests and benchmarks).
"""
