"""JD534 unusable-donation: a donated argument whose buffer no output reuses.

Donation lets XLA write an output into an input's memory; it can only when an output has the
same shape, dtype and (per device) sharding. On one device JAX checks this itself and warns
"Some donated buffers were not usable: float32[16]" without naming the argument; with sharded
inputs it hands the donation to XLA (`buffer_donor`) and says nothing. The compiled module's
`input_output_alias` tells which donations were used; the rest are reported by the user's name.
"""

from __future__ import annotations

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import UnusableDonation
from jaxdoctor.trace.sharding._common import finding, fmt_bytes
from jaxdoctor.trace.sharding.program import Arg, Program
from jaxdoctor.trace.source_map import SourceLocation

#: donated scalars and tiny arrays are not worth a finding
MIN_BYTES = 1024


def analyze(prog: Program) -> list[Finding]:
    site = prog.def_site
    if site is None:
        return []
    loc = SourceLocation.at(site[0], site[1])
    out = []
    for a in prog.args:
        if not a.donated or a.aliased or a.nbytes < MIN_BYTES:
            continue
        shape = f"{a.dtype}[{','.join(map(str, a.shape))}]"
        msg = f"`{a.name}` ({shape}, {fmt_bytes(a.device_nbytes)} per device) is donated to `{prog.name}` but "
        msg += "the function never uses it" if not a.kept else f"no output can reuse its buffer: {_why(prog, a)}"
        msg += (" (JAX warns only with the shape)" if prog.jax_warns_donation
                else " (JAX does not warn when inputs are sharded)")
        out.append(finding(UnusableDonation, loc, msg, {
            "argument": a.name, "shape": shape, "bytes_per_device": a.device_nbytes,
            "jax_warns": prog.jax_warns_donation, "function": prog.name,
        }))
    return out


def _why(prog: Program, a: Arg) -> str:
    same_shape = [o for o in prog.outs if o.shape == a.shape]
    if not same_shape:
        outs = ", ".join(f"{o.dtype}[{','.join(map(str, o.shape))}]" for o in prog.outs[:6]) or "none"
        return f"no output has its shape (outputs: {outs})"
    same_dtype = [o for o in same_shape if o.dtype == a.dtype]
    if not same_dtype:
        return f"the output of its shape is {same_shape[0].dtype}, not {a.dtype}"
    other = [o for o in same_dtype if o.spec != a.spec]
    if len(other) == len(same_dtype) and a.spec is not None:
        return f"the output of its shape and dtype is sharded {other[0].spec}, the input {a.spec}"
    taken = sum(1 for b in prog.args if b.aliased and b.shape == a.shape and b.dtype == a.dtype)
    return (f"the {len(same_dtype)} output(s) of its shape and dtype already reuse other donated "
            f"buffers ({taken})" if taken else "XLA did not alias it to the output of its shape and dtype")
