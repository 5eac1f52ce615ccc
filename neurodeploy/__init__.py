"""neurodeploy: describe a spiking model once in YAML; compile, validate and deploy it.

The public API (docs/api.md; the command line is a thin shell over it)::

    import neurodeploy as nd
    net = nd.load("models/single_lif.yaml")                   # spec -> verified IR (raises SpecError)
    net, diagnostics = nd.check("models/x.yaml")               # never raises; net is None on errors
    r = nd.simulate("single_lif", "torch", duration="50 ms")   # a Result; r.to_pandas() for DataFrames
    c = nd.compile(net, "loihi2-sim", out="out/lif")           # placement, integers, core map, artifact
    report = nd.validate(net, "loihi2-sim", "out/val")         # target vs the Brian2 reference
    nd.targets()                                               # every target available here
"""

from . import ir
from .app.api import (
    Compiled,
    Deployment,
    Evaluation,
    RunOutputs,
    backend,
    build,
    check,
    compile,
    deploy,
    evaluate,
    export_model,
    import_model,
    load,
    placement,
    run,
    simulate,
    targets,
    train,
    validate,
    write_result,
)
from .app.sweep import SweepResult, sweep
from .core.errors import BackendError, CompileError, NeurodeployError, NotImplementedYet, SpecError, UsageError
from .core.result import Result
from .core.versions import __version__

__all__ = ["__version__", "ir", "load", "check", "compile", "simulate", "build", "placement", "evaluate", "run",
           "validate", "deploy", "sweep", "SweepResult", "targets", "backend", "write_result", "import_model", "export_model", "train", "Result", "Compiled", "Deployment",
           "Evaluation", "RunOutputs", "NeurodeployError", "SpecError", "CompileError", "BackendError",
           "NotImplementedYet", "UsageError"]
