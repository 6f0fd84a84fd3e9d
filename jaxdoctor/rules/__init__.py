"""Every rule module: one per JAX concept for the static rules; `jaxpr` and `trace_runtime`
hold the metadata of the trace-only rules (JD5xx). No module here imports jax.

`jaxdoctor.registry` imports every module of this package on first use, which defines (and so
registers) each rule class; importing one module, e.g. `rules.jaxpr` for the trace pass, loads
only what that module needs.
"""
