"""JD534 unusable-donation: a donated argument whose buffer no output reuses.

Donation lets XLA write an output into an input's memory; it can only when an output has the
same shape, dtype and (per device) sharding. On one device JAX checks this itself and warns
"Some donated buffers were not usable: float32[16]" without naming the argument; with sharded
inputs it hands the donation to XLA (`buffer_donor`) and says nothing. The compiled module's
`input_output_alias` tells which donations were used; the rest are reported by the user's name,
at the line that asks for the donation (the `jax.jit(..., donate_argnums=...)` call or
decorator), else at the function's definition.
"""

from __future__ import annotations

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import UnusableDonation
from jaxdoctor.trace.sharding._common import call_location, finding, fmt_bytes, jit_keyword_line
from jaxdoctor.trace.sharding.program import Arg, Program
from jaxdoctor.trace.source_map import SourceLocation

_DONATE = ("donate_argnums", "donate_argnames", "donate")  # `donate=` is eqx.filter_jit's


def analyze(prog: Program) -> list[Finding]:
    unused = [a for a in prog.args if a.donated and not a.aliased and a.shape]
    if not unused:
        return []
    site = prog.def_site
    if site is not None:
        short = prog.name.rsplit(".", 1)[-1]
        loc = SourceLocation.at(site[0], donation_line(site[0], site[1], short))
    else:
        loc = call_location(prog)
        if loc is None:
            return []
    parts = []
    for a in unused:
        shape = f"{a.dtype}[{','.join(map(str, a.shape))}]"
        why = "the function never uses it" if not a.kept else _why(prog, a)
        parts.append(f"`{a.name}` ({shape}, {fmt_bytes(a.device_nbytes)} per device: {why})")
    names = " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:3]) + f" and {len(parts) - 3} more"
    msg = (f"{names} {'is' if len(parts) == 1 else 'are'} donated to `{prog.name}`, but no output can "
           f"reuse {'its buffer' if len(parts) == 1 else 'their buffers'}: the donation frees nothing"
           + (" (JAX's warning names only the shapes)" if prog.jax_warns_donation
              else " (JAX does not warn when the inputs are sharded)"))
    return [finding(UnusableDonation, loc, msg, {
        "arguments": [a.name for a in unused],
        "shapes": [f"{a.dtype}[{','.join(map(str, a.shape))}]" for a in unused],
        "bytes_per_device": sum(a.device_nbytes for a in unused),
        "jax_warns": prog.jax_warns_donation, "function": prog.name,
    })]


def _why(prog: Program, a: Arg) -> str:
    same_shape = [o for o in prog.outs if o.shape == a.shape]
    if not same_shape:
        return "no output has its shape"
    same_dtype = [o for o in same_shape if o.dtype == a.dtype]
    if not same_dtype:
        return f"the output of its shape is {same_shape[0].dtype}"
    other = [o for o in same_dtype if o.spec != a.spec]
    if len(other) == len(same_dtype) and a.spec is not None:
        return f"the output of its shape is sharded {other[0].spec}, the input {a.spec}"
    return "the outputs of its shape and dtype already reuse other donated buffers"


def donation_line(path: str, def_line: int, name: str) -> int:
    """The line asking to donate (see `_common.jit_keyword_line`)."""
    return jit_keyword_line(path, def_line, name, _DONATE)
