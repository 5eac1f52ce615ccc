"""A numpy simulator for networks of graded populations (the expanded ``ipvae`` / ``lca`` blocks).

It executes the step semantics of :mod:`neurodeploy.library.neurons.graded` on any expanded network,
batched over images, with each model's :meth:`reference_step`; it is the oracle the expansion
and the target lowerings are tested against (``tests/blocks/test_expand.py``), not a fast
backend. Per step n = 1..T:

1. the algebraic (``linear``) populations take their input from the current outputs, in
   dependency order (stateful populations' outputs of step n-1, value stimuli's values);
2. every stateful population takes the weighted sum of its sources' outputs as its graded
   input and steps (all at once: they all see step n-1);
3. after the last step the algebraic populations are evaluated once more (the readout of the
   last counts).

A stateful population with ``restart_every: N`` starts over from its initial state (and its
initial output) after every N steps. Value stimuli are held constant (one frame per run).
"""

from __future__ import annotations

import numpy as np

from ...core.errors import UsageError
from ...ir.nodes import ArrayStimulus, Network
from ...library.endpoints import algebraic_order
from ...library.materialize import dense_weights, population_params
from ...library.neurons import get_neuron


def simulate_graded(net: Network, inputs: dict[str, np.ndarray], steps: int, seed: int = 0,
                    rng: np.random.Generator | None = None) -> dict:
    """Run the graded network ``net`` for ``steps`` steps on a batch.

    ``inputs``: value stimulus name -> (batch, size) values (the stimulus's gain is not applied
    here). Returns ``{"outputs": {population: (batch, size)}, "states": {population: {var:
    array}}}`` after the last step (algebraic outputs re-evaluated from the final outputs).
    """
    if net.blocks:
        raise UsageError("expand the blocks first (neurodeploy.passes.expand.expand)")
    rng = rng if rng is not None else np.random.default_rng(seed)
    models = {p.name: get_neuron(p.model) for p in net.populations}
    spiking = [p.name for p in net.populations if not models[p.name].graded]
    if spiking:
        raise UsageError(f"the graded simulator runs graded populations only; {', '.join(spiking)} spike")
    values = {}
    for s in net.stimuli:
        if isinstance(s, ArrayStimulus) and s.encoding == "value":
            if s.name not in inputs:
                raise UsageError(f"no values given for stimulus '{s.name}'")
            values[s.name] = np.atleast_2d(np.asarray(inputs[s.name], float))
    if not values:
        raise UsageError("the network has no value-encoded array stimulus to drive it")
    batch = {len(v) for v in values.values()}
    if len(batch) != 1:
        raise UsageError("all stimuli need the same batch size")
    B = batch.pop()
    params = {p.name: population_params(net, p) for p in net.populations}
    W = {pr.name: dense_weights(net, pr) for pr in net.projections}
    into = {p.name: [pr for pr in net.projections if pr.target == p.name] for p in net.populations}
    stateful = [p for p in net.populations if not models[p.name].algebraic]
    order, stuck = algebraic_order(net)
    if stuck:
        raise UsageError("algebraic populations form a loop: " + ", ".join(stuck))
    algebraic = [net.node(n) for n in order]

    def fresh(p):
        m = models[p.name]
        st = {k: np.broadcast_to(v, (B, p.size)).copy()
              for k, v in m.initial_state(params[p.name], p.size).items()}
        return st, m.initial_output(params[p.name], st, rng)

    state, out = {}, dict(values)
    for p in stateful:
        state[p.name], out[p.name] = fresh(p)

    def graded_input(p):
        total = np.zeros((B, p.size))
        for pr in into[p.name]:
            total += out[pr.source] @ W[pr.name]
        return total

    def evaluate_algebraic():
        for p in algebraic:
            state[p.name], out[p.name] = models[p.name].reference_step(
                params[p.name], {"y": np.zeros((B, p.size))}, {"graded": graded_input(p)}, net.simulation.dt)

    for n in range(1, int(steps) + 1):
        for p in stateful:
            every = int(getattr(params[p.name], "restart_every", 0) or 0)
            if every and n > 1 and (n - 1) % every == 0:
                state[p.name], out[p.name] = fresh(p)
        evaluate_algebraic()
        new = {}
        for p in stateful:
            new[p.name] = models[p.name].reference_step(params[p.name], state[p.name],
                                                        {"graded": graded_input(p)}, net.simulation.dt, rng)
        for name, (st, o) in new.items():
            state[name], out[name] = st, o
    evaluate_algebraic()
    return {"outputs": {p.name: out[p.name] for p in net.populations},
            "states": {p.name: state[p.name] for p in net.populations}}
