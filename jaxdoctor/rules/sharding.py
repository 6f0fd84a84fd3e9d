"""Multi-device mistakes: the sharding doctor's trace rules (JD530–JD537) and the static rules
that see the same mistakes in the source (JD140, JD141).

The trace findings come from `jaxdoctor.trace.sharding` (one module per rule), run on every
jitted function compiled for more than one device; this module holds their identity only.
The static rules are small `LintRule`s over the file's own meshes and training loops. Never
imports jax.
"""

from __future__ import annotations

from jaxdoctor.findings import Severity
from jaxdoctor.rule import TraceRule


class CollectiveInLoop(TraceRule):
    code = "JD530"
    name = "collective-in-loop"
    summary = (
        "An all-gather, all-to-all, collective-permute or reduce-scatter of activations runs in every "
        "iteration of a `scan`/`fori_loop`/`while_loop` (not the weight gathers of FSDP, not gradient "
        "reductions)"
    )
    severity = Severity.WARNING
    fix_title = (
        "Give the loop's activations the sharding their producers already have (or constrain them once "
        "outside the loop), so XLA has nothing to move on each iteration"
    )


class InvoluntaryResharding(TraceRule):
    code = "JD531"
    name = "involuntary-resharding"
    summary = (
        "XLA's SPMD partitioner cannot convert a tensor between two shardings and replicates all of it "
        "first (its \"Involuntary full rematerialization\" warning), shown at the user's line"
    )
    severity = Severity.WARNING
    fix_title = (
        "Make the two shardings agree (same mesh axes on the same dimensions), or reshard in steps "
        "XLA can do locally (one axis at a time)"
    )


class ReplicatedGiant(TraceRule):
    code = "JD532"
    name = "replicated-giant"
    summary = (
        "A large parameter or optimizer-state array is fully replicated on every device while the mesh "
        "has an axis that could split it"
    )
    severity = Severity.WARNING
    fix_title = "Shard it over a mesh axis that divides one of its dimensions (`NamedSharding(mesh, P(...))`)"


class DeviceMemoryExceeded(TraceRule):
    code = "JD533"
    name = "device-memory-exceeded"
    summary = (
        "A jitted function needs more memory per device (arguments + outputs + temporaries, from XLA's "
        "`memory_analysis()`) than the target device has (`--device-memory`)"
    )
    severity = Severity.ERROR
    fix_title = (
        "Shard the largest values over more devices, donate inputs that outputs replace, or "
        "rematerialize activations (`jax.checkpoint`)"
    )


class UnusableDonation(TraceRule):
    code = "JD534"
    name = "unusable-donation"
    summary = (
        "A donated argument has no output that can reuse its buffer (shape, dtype or sharding differ), "
        "so the donation frees nothing; with sharded inputs JAX does not warn"
    )
    severity = Severity.WARNING
    fix_title = (
        "Donate only arguments the function replaces with an output of the same shape, dtype and "
        "sharding (`donate_argnums`/`donate_argnames`)"
    )


class UnshardedInput(TraceRule):
    code = "JD535"
    name = "unsharded-input"
    summary = (
        "A batch-like input is replicated on every device (or copied to each from the host) while the "
        "parameters are sharded: every device gets the whole batch on each step"
    )
    severity = Severity.WARNING
    fix_title = "Shard the batch over the data axis: `jax.device_put(batch, NamedSharding(mesh, P('data')))`"


class MeshMistake(TraceRule):
    code = "JD536"
    name = "mesh-mistake"
    summary = (
        "A PartitionSpec that does not fit its mesh: a dimension the mesh axes do not divide, an axis "
        "name the mesh does not have, an axis used twice (shown at the user's line, with the axis)"
    )
    severity = Severity.ERROR
    fix_title = "Use an axis the mesh has, once per spec, on a dimension its size divides"


class HostTransferInStep(TraceRule):
    code = "JD537"
    name = "host-transfer-in-step"
    summary = (
        "The training loop copies a device value to the host on every step (`float(loss)`, "
        "`np.asarray(x)`, `.item()`): the host waits for each step before it can dispatch the next"
    )
    severity = Severity.WARNING
    fix_title = (
        "Keep the value on the device and read it every N steps (or accumulate metrics on the device "
        "and fetch them once)"
    )
