"""One-shot compilation: a HostView in, its complete flow set out."""

from __future__ import annotations

from quantum_ovs.compiler.engine import Allocations, Engine, compile_flows

__all__ = ["Allocations", "Engine", "compile_flows"]
