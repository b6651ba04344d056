"""The spec tests of chapters 04 and 05, tested both ways: typical wrong versions of
each unit are rejected with a message that names the bug (the key words below), and
correct versions written unlike the book's pass; so does the book's own, and the
exercise's stub fails."""

import pytest

from llm_tutorial.exercises import grade_many
from spec_cases import check_both_ways, versions

# unit -> (notebook, [(wrong version, key words its message must hold)], [correct])
CASES = {}

CASES["Linear.forward"] = (
    "04_layers.ipynb",
    [
        (
            """
def forward(self, x):
    return x @ self.weight
""",
            "x @ weight.T",
        ),
        (
            """
def forward(self, x):
    return torch.mm(x, self.weight.T)
""",
            "torch.mm takes only 2-D",
        ),
    ],
    [
        """
def forward(self, x):
    return torch.einsum("...i,oi->...o", x, self.weight)
""",
        """
def forward(self, x):
    return (x.unsqueeze(-2) * self.weight).sum(-1)
""",
    ],
)

CASES["Embedding.forward"] = (
    "04_layers.ipynb",
    [
        (
            """
def forward(self, token_ids):
    return self.weight[:, token_ids]
""",
            "row i of weight",
        ),
        (
            """
def forward(self, token_ids):
    return self.weight[token_ids.flatten()]
""",
            "keep the ids' shape",
        ),
        (
            """
def forward(self, token_ids):
    return self.weight.data[token_ids]
""",
            "not .data",
        ),
    ],
    [
        """
def forward(self, token_ids):
    flat = torch.index_select(self.weight, 0, token_ids.reshape(-1))
    return flat.reshape(*token_ids.shape, self.embedding_dim)
""",
        """
def forward(self, token_ids):
    one_hot = torch.nn.functional.one_hot(token_ids, self.num_embeddings)
    return one_hot.to(self.weight.dtype) @ self.weight
""",
    ],
)

CASES["RMSNorm.forward"] = (
    "04_layers.ipynb",
    [
        (
            """
def forward(self, x):
    rms = torch.sqrt(x.square().mean(-1, keepdim=True) + self.eps)
    return x / rms * self.weight
""",
            "overflows float16",
        ),
        (
            """
def forward(self, x):
    x32 = x.float()
    rms = torch.sqrt(x32.mean(-1, keepdim=True) + self.eps)
    return (x32 / rms * self.weight).to(x.dtype)
""",
            "mean of the squares",
        ),
        (
            """
def forward(self, x):
    x32 = x.float()
    rms = torch.sqrt(x32.square().mean(-1, keepdim=True)) + self.eps
    return (x32 / rms * self.weight).to(x.dtype)
""",
            "inside the square root",
        ),
        (
            """
def forward(self, x):
    x32 = x.float()
    rms = torch.sqrt(x32.square().mean(-1, keepdim=True) + self.eps)
    return x32 / rms * self.weight
""",
            "cast back to x's dtype",
        ),
    ],
    [
        """
def forward(self, x):
    x32 = x.float()
    inv = torch.rsqrt(x32.pow(2).sum(-1, keepdim=True) / x.shape[-1] + self.eps)
    return (self.weight * (x32 * inv)).type_as(x)
""",
        """
def forward(self, x):
    x64 = x.double()
    norm = torch.linalg.vector_norm(x64, dim=-1, keepdim=True)
    rms = (norm**2 / self.d_model + self.eps) ** 0.5
    return (x64 / rms * self.weight.double()).to(x.dtype)
""",
    ],
)

CASES["silu"] = (
    "04_layers.ipynb",
    [
        ("def silu(x):\n    return torch.sigmoid(x)\n", "sigmoid(2) alone"),
        ("def silu(x):\n    return x / (1 + torch.exp(x))\n", "x / (1 + exp(-x))"),
        (
            "def silu(x):\n    e = torch.exp(x)\n    return x * e / (1 + e)\n",
            "overflows float32",
        ),
    ],
    [
        "def silu(x):\n    return x / (1 + torch.exp(-x))\n",
        "def silu(x):\n    return x * 0.5 * (1 + torch.tanh(x / 2))\n",
    ],
)

CASES["SwiGLU.forward"] = (
    "04_layers.ipynb",
    [
        (
            """
def forward(self, x):
    return self.w2(torch.sigmoid(self.w1(x)) * self.w3(x))
""",
            "not sigmoid(a)",
        ),
        (
            """
def forward(self, x):
    return self.w2(self.w1(x) * silu(self.w3(x)))
""",
            "SiLU goes on w1's output",
        ),
        (
            """
def forward(self, x):
    return silu(self.w1(x)) * self.w3(x)
""",
            "out = w2(",
        ),
    ],
    [
        """
def forward(self, x):
    h, gate = x @ self.w1.weight.T, x @ self.w3.weight.T
    return (h * torch.sigmoid(h) * gate) @ self.w2.weight.T
""",
    ],
)

_ROPE_DEF = """
def forward(self, x: Tensor, token_positions: Tensor):
"""
CASES["RotaryPositionalEmbedding.forward"] = (
    "04_layers.ipynb",
    [
        (  # the two halves instead of adjacent pairs
            _ROPE_DEF
            + """
    cos = self.cos[token_positions].to(x.dtype)
    sin = self.sin[token_positions].to(x.dtype)
    x1, x2 = x[..., : self.d_k // 2], x[..., self.d_k // 2 :]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
""",
            "not the two halves",
        ),
        (  # pairs counted from 1 in the angle
            _ROPE_DEF
            + """
    k = torch.arange(1, self.d_k // 2 + 1)
    angle = token_positions[..., None] * self.theta ** (-2 * k / self.d_k)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)
""",
            "pair 0 turns by p radians",
        ),
        (  # positions ignored
            _ROPE_DEF
            + """
    seq = torch.arange(x.shape[-2])
    cos, sin = self.cos[seq].to(x.dtype), self.sin[seq].to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)
""",
            "not by its index in the sequence",
        ),
        (  # turned clockwise
            _ROPE_DEF
            + """
    cos = self.cos[token_positions].to(x.dtype)
    sin = self.sin[token_positions].to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos + x2 * sin, -x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)
""",
            "counterclockwise",
        ),
        (  # float32 cos and sin: a bfloat16 x comes back as float32
            _ROPE_DEF
            + """
    cos, sin = self.cos[token_positions], self.sin[token_positions]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)
""",
            "cast cos and sin",
        ),
    ],
    [
        _ROPE_DEF
        + """
    z = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    turn = torch.polar(torch.ones_like(self.cos), torch.atan2(self.sin, self.cos))
    return torch.view_as_real(z * turn[token_positions]).flatten(-2).to(x.dtype)
""",
        _ROPE_DEF
        + """
    out = torch.empty_like(x)
    for k in range(self.d_k // 2):
        c = self.cos[token_positions, k].to(x.dtype)
        s = self.sin[token_positions, k].to(x.dtype)
        a, b = x[..., 2 * k], x[..., 2 * k + 1]
        out[..., 2 * k], out[..., 2 * k + 1] = a * c - b * s, a * s + b * c
    return out
""",
    ],
)

CASES["softmax"] = (
    "04_layers.ipynb",
    [
        (
            """
def softmax(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim, keepdim=True)
""",
            "subtract each row's maximum",
        ),
        (
            """
def softmax(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum(dim, keepdim=True)
""",
            "each row's own maximum",
        ),
        (
            """
def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim, keepdim=True))
    return e / e.sum(dim)
""",
            "keepdim=True",
        ),
    ],
    [
        """
def softmax(x, dim=-1):
    return torch.exp(x - torch.logsumexp(x, dim, keepdim=True))
""",
        """
def softmax(x, dim=-1):
    rows = x.movedim(dim, -1)
    flat = rows.reshape(-1, rows.shape[-1])
    out = torch.empty_like(flat)
    for r in range(flat.shape[0]):  # one row at a time
        e = torch.exp(flat[r] - max(flat[r].tolist()))
        out[r] = e / e.sum()
    return out.reshape(rows.shape).movedim(-1, dim)
""",
    ],
)

_SDPA_DEF = "def scaled_dot_product_attention(Q, K, V, mask=None):\n"
CASES["scaled_dot_product_attention"] = (
    "04_layers.ipynb",
    [
        (
            _SDPA_DEF
            + """
    scores = Q @ K.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ V
""",
            "sqrt(d_k)",
        ),
        (
            _SDPA_DEF
            + """
    scores = Q @ K.transpose(-2, -1) / math.sqrt(V.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ V
""",
            "(not d_v)",
        ),
        (
            _SDPA_DEF
            + """
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    return softmax(scores, dim=-1) @ V
""",
            "True = may attend",
        ),
        (
            _SDPA_DEF
            + """
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    return softmax(scores, dim=-1) @ V
""",
            "-inf (not 0)",
        ),
        (
            _SDPA_DEF
            + """
    scores = Q @ K.T / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ V
""",
            "K.transpose(-2, -1)",
        ),
        (
            _SDPA_DEF
            + """
    e = torch.exp(Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1]))
    if mask is not None:
        e = e * mask
    return e / e.sum(-1, keepdim=True) @ V
""",
            "stable softmax",
        ),
    ],
    [
        _SDPA_DEF
        + """
    scores = torch.einsum("...nd,...md->...nm", Q, K) * Q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    weights = torch.exp(scores - scores.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    return torch.einsum("...nm,...md->...nd", weights, V)
""",
    ],
)


CASES["causal_mask"] = (
    "05_model.ipynb",
    [
        (
            "def causal_mask(n, offset=0, device=None):\n"
            "    return torch.ones(n, offset + n, dtype=torch.bool).triu(offset)\n",
            "the lower triangle",
        ),
        (
            """
def causal_mask(n, offset=0, device=None):
    q = torch.arange(offset, offset + n)
    return torch.arange(offset + n)[None, :] < q[:, None]
""",
            "diagonal included",
        ),
        (
            "def causal_mask(n, offset=0, device=None):\n"
            "    return torch.ones(n, n, dtype=torch.bool).tril()\n",
            "with an offset the mask is (n, offset + n)",
        ),
        (
            "def causal_mask(n, offset=0, device=None):\n"
            "    return torch.ones(n, offset + n).tril(offset)\n",
            "a boolean mask",
        ),
    ],
    [
        "def causal_mask(n, offset=0, device=None):\n"
        "    ones = torch.ones(n, offset + n, dtype=torch.bool, device=device)\n"
        "    return ones.tril(offset)\n",
        """
def causal_mask(n, offset=0, device=None):
    mask = torch.zeros(n, offset + n, dtype=torch.bool, device=device)
    for i in range(n):
        mask[i, : offset + i + 1] = True
    return mask
""",
    ],
)

_MHSA_DEF = """
def forward(self, x, token_positions=None, kv_cache=None, layer_idx=0):
    n, offset = x.shape[-2], (kv_cache.pos if kv_cache is not None else 0)
"""
_MHSA_END = """
    if kv_cache is not None:
        k, v = kv_cache.update(layer_idx, k, v)
    out = causal_attend(q, k, v, offset)
    return self.output_proj(merge_heads(out))
"""
_QKV = """
    q = split_heads(self.q_proj(x), self.num_heads)
    k = split_heads(self.k_proj(x), self.num_heads)
    v = split_heads(self.v_proj(x), self.num_heads)
"""
_ROPE_QK = """
    if self.rope is not None:
        q, k = rope_qk(self, q, k, token_positions, offset)
"""
CASES["MultiHeadSelfAttention.forward"] = (
    "05_model.ipynb",
    [
        (  # no mask
            _MHSA_DEF
            + _QKV
            + _ROPE_QK
            + """
    if kv_cache is not None:
        k, v = kv_cache.update(layer_idx, k, v)
    out = scaled_dot_product_attention(q, k, v)
    return self.output_proj(merge_heads(out))
""",
            "causal: position i attends only to keys j <= i",
        ),
        (  # heads cut out of the wrong axis
            _MHSA_DEF
            + """
    def split(t):
        return t.reshape(*t.shape[:-2], self.num_heads, n, self.d_k)

    q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
"""
            + _ROPE_QK
            + """
    if kv_cache is not None:
        k, v = kv_cache.update(layer_idx, k, v)
    out = causal_attend(q, k, v, offset)
    return self.output_proj(out.reshape(x.shape))
""",
            "then move heads before seq",
        ),
        (  # no RoPE at all
            _MHSA_DEF + _QKV + _MHSA_END,
            "RoPE turns q and k (not v)",
        ),
        (  # RoPE by the index in the sequence
            _MHSA_DEF
            + _QKV
            + """
    if self.rope is not None:
        q, k = rope_qk(self, q, k, None, offset)
"""
            + _MHSA_END,
            "turn q and k by token_positions",
        ),
        (  # the cache is not used
            _MHSA_DEF
            + _QKV
            + _ROPE_QK
            + """
    out = causal_attend(q, k, v, 0)
    return self.output_proj(merge_heads(out))
""",
            "kv_cache.update(layer_idx, k, v)",
        ),
    ],
    [
        _MHSA_DEF
        + """
    if token_positions is None:
        token_positions = torch.arange(offset, offset + n)
    qs, ks, vs = [], [], []
    for h in range(self.num_heads):  # one head at a time
        rows = slice(h * self.d_k, (h + 1) * self.d_k)
        q = x @ self.q_proj.weight[rows].T
        k = x @ self.k_proj.weight[rows].T
        if self.rope is not None:
            q, k = self.rope(q, token_positions), self.rope(k, token_positions)
        qs.append(q)
        ks.append(k)
        vs.append(x @ self.v_proj.weight[rows].T)
    q, k, v = (torch.stack(t, dim=-3) for t in (qs, ks, vs))
    if kv_cache is not None:
        k, v = kv_cache.update(layer_idx, k, v)
    m = k.shape[-2]
    mask = torch.ones(n, m, dtype=torch.bool).tril(m - n)
    out = scaled_dot_product_attention(q, k, v, mask)
    return self.output_proj(torch.cat(out.unbind(-3), dim=-1))
""",
    ],
)

_BLOCK_DEF = """
def forward(self, x, token_positions=None, kv_cache=None, layer_idx=0):
"""
CASES["TransformerBlock.forward"] = (
    "05_model.ipynb",
    [
        (  # post-norm always
            _BLOCK_DEF
            + """
    x = self.ln1(x + self.attn(x, token_positions, kv_cache, layer_idx))
    return self.ln2(x + self.ffn(x))
""",
            "post-norm would change it",
        ),
        (  # no residuals
            _BLOCK_DEF
            + """
    z = self.attn(self.ln1(x), token_positions, kv_cache, layer_idx)
    return self.ffn(self.ln2(z))
""",
            "residuals: z = x + attn(ln1(x))",
        ),
        (  # ln2 of x
            _BLOCK_DEF
            + """
    z = x + self.attn(self.ln1(x), token_positions, kv_cache, layer_idx)
    return z + self.ffn(self.ln2(x))
""",
            "ln2 normalizes z, not x",
        ),
        (  # positions dropped
            _BLOCK_DEF
            + """
    if self.post_norm:
        x = self.ln1(x + self.attn(x, None, kv_cache, layer_idx))
        return self.ln2(x + self.ffn(x))
    z = x + self.attn(self.ln1(x), None, kv_cache, layer_idx)
    return z + self.ffn(self.ln2(z))
""",
            "pass token_positions on to attn",
        ),
        (  # the post_norm switch ignored
            _BLOCK_DEF
            + """
    z = x + self.attn(self.ln1(x), token_positions, kv_cache, layer_idx)
    return z + self.ffn(self.ln2(z))
""",
            "the post-norm ablation",
        ),
        (  # the cache dropped
            _BLOCK_DEF
            + """
    if self.post_norm:
        x = self.ln1(x + self.attn(x, token_positions))
        return self.ln2(x + self.ffn(x))
    z = x + self.attn(self.ln1(x), token_positions)
    return z + self.ffn(self.ln2(z))
""",
            "pass kv_cache and layer_idx on to attn",
        ),
    ],
    [
        _BLOCK_DEF
        + """
    h = x if self.post_norm else self.ln1(x)
    x = x + self.attn(h, token_positions, kv_cache=kv_cache, layer_idx=layer_idx)
    if self.post_norm:
        x = self.ln1(x)
    h = x if self.post_norm else self.ln2(x)
    x = x + self.ffn(h)
    return self.ln2(x) if self.post_norm else x
""",
    ],
)

_LM_DEF = """
def forward(self, in_indices, kv_cache=None):
    offset = kv_cache.pos if kv_cache is not None else 0
    n = in_indices.shape[1]
"""
CASES["TransformerLM.forward"] = (
    "05_model.ipynb",
    [
        (  # no final norm
            _LM_DEF
            + """
    x = self.token_embeddings(in_indices)
    for i, layer in enumerate(self.layers):
        x = layer(x, torch.arange(offset, offset + n), kv_cache, i)
    if kv_cache is not None:
        kv_cache.pos += n
    return self.lm_head(x)
""",
            "the logits are lm_head(ln_final(x))",
        ),
        (  # positions from 0 with a cache
            _LM_DEF
            + """
    x = self.token_embeddings(in_indices)
    for i, layer in enumerate(self.layers):
        x = layer(x, torch.arange(n), kv_cache, i)
    if kv_cache is not None:
        kv_cache.pos += n
    return self.lm_head(self.ln_final(x))
""",
            "the new tokens sit at positions kv_cache.pos",
        ),
        (  # pos never moves
            _LM_DEF
            + """
    x = self.token_embeddings(in_indices)
    for i, layer in enumerate(self.layers):
        x = layer(x, torch.arange(offset, offset + n), kv_cache, i)
    return self.lm_head(self.ln_final(x))
""",
            "moves kv_cache.pos on by seq",
        ),
        (  # pos moved by every layer
            _LM_DEF
            + """
    x = self.token_embeddings(in_indices)
    for i, layer in enumerate(self.layers):
        x = layer(x, None, kv_cache, i)
        if kv_cache is not None:
            kv_cache.pos += n
    return self.lm_head(self.ln_final(x))
""",
            "once, after the last",
        ),
        (  # every block on layer 0 of the cache
            _LM_DEF
            + """
    x = self.token_embeddings(in_indices)
    for layer in self.layers:
        x = layer(x, torch.arange(offset, offset + n), kv_cache)
    if kv_cache is not None:
        kv_cache.pos += n
    return self.lm_head(self.ln_final(x))
""",
            "block i gets layer_idx=i",
        ),
    ],
    [
        _LM_DEF
        + """
    x = self.token_embeddings.weight[in_indices]
    for i in range(len(self.layers)):  # positions: the attention's default
        x = self.layers[i](x, kv_cache=kv_cache, layer_idx=i)
    if kv_cache is not None:
        kv_cache.pos = offset + n
    return self.ln_final(x) @ self.lm_head.weight.T
""",
    ],
)


@pytest.fixture(scope="module")
def graded() -> dict[str, list[dict]]:
    "Every version of every unit, graded in one child process (one PyTorch import)."
    asks = [(nb, unit, versions(nb, unit, w, r)) for unit, (nb, w, r) in CASES.items()]
    return dict(zip(CASES, grade_many(asks)))


@pytest.mark.parametrize("unit", list(CASES))
def test_spec_both_ways(unit, graded):
    _, wrong, right = CASES[unit]
    check_both_ways(unit, graded[unit], wrong, right)
