"""A decoder-only transformer training step with about 1.07B parameters (20 layers, d_model
2048, MLP 8192, vocabulary 32000), layers stacked and scanned. `make bench` traces it
abstractly:

    jaxdoctor trace bench/programs/transformer_1b.py:train_step --inputs "$(python bench/programs/transformer_1b.py)"

Nothing is allocated: the parameters (4.3 GB in float32) exist only as shapes.
"""
import jax
import jax.numpy as jnp

LAYERS, D, FF, VOCAB, HEADS = 20, 2048, 8192, 32000, 16
SHAPES = {
    "embed": (VOCAB, D), "wqkv": (LAYERS, D, 3 * D), "wo": (LAYERS, D, D),
    "w1": (LAYERS, D, FF), "w2": (LAYERS, FF, D), "ln1": (LAYERS, D), "ln2": (LAYERS, D), "lnf": (D,),
}
BATCH, SEQ = 8, 512


def rms_norm(x, scale):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * scale


def attention(x, wqkv, wo):
    b, t, _ = x.shape
    q, k, v = jnp.split(x @ wqkv, 3, axis=-1)
    q, k, v = (a.reshape(b, t, HEADS, D // HEADS) for a in (q, k, v))
    scores = jnp.einsum("bthd,bshd->bhts", q, k) / jnp.sqrt(D // HEADS)
    mask = jnp.tril(jnp.ones((t, t), bool))
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    out = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(scores, axis=-1), v)
    return out.reshape(b, t, D) @ wo


def forward(params, tokens):
    x = params["embed"][tokens]

    def layer(x, p):
        x = x + attention(rms_norm(x, p["ln1"]), p["wqkv"], p["wo"])
        x = x + jax.nn.gelu(rms_norm(x, p["ln2"]) @ p["w1"]) @ p["w2"]
        return x, None

    stacked = {k: params[k] for k in ("wqkv", "wo", "w1", "w2", "ln1", "ln2")}
    x, _ = jax.lax.scan(jax.checkpoint(layer), x, stacked)
    return rms_norm(x, params["lnf"]) @ params["embed"].T


def loss_fn(params, tokens):
    logits = forward(params, tokens[:, :-1])
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1))


def train_step(params, tokens):
    loss, grads = jax.value_and_grad(loss_fn)(params, tokens)
    new = jax.tree.map(lambda p, g: p - 1e-4 * g, params, grads)
    return new, loss


def inputs_spec() -> str:
    """The `--inputs` string for `train_step`."""
    params = ", ".join(f"'{k}': f32[{','.join(map(str, s))}]" for k, s in SHAPES.items())
    return "{" + params + "}, " + f"i32[{BATCH},{SEQ + 1}]"


def n_params() -> int:
    total = 0
    for s in SHAPES.values():
        n = 1
        for d in s:
            n *= d
        total += n
    return total


if __name__ == "__main__":
    print(inputs_spec())
