"""The spec tests of chapters 00, 01, 01b and 02, tested both ways: typical wrong
versions of each unit are rejected with a message that names the bug (the key words
below), and correct versions written unlike the book's pass; so does the book's own,
and the exercise's stub fails."""

import pytest

from llm_tutorial.exercises import grade_many
from spec_cases import check_both_ways, versions

# unit -> (notebook, [(wrong version, key words its message must hold)], [correct])
CASES = {}

# 00: SoftmaxFunction.backward ---------------------------------------------------
SFB = """
@staticmethod
def backward(ctx, g):
    (y,) = ctx.saved_tensors
    return y * (g - (g * y).sum(DIM, keepdim=True)), None
"""
CASES["SoftmaxFunction.backward"] = (
    "00_pytorch.ipynb",
    [
        (
            """
@staticmethod
def backward(ctx, g):
    (y,) = ctx.saved_tensors
    return y * g, None
""",
            "the sum over the row is not optional",
        ),
        (SFB.replace("DIM", "-1"), "along ctx.dim only"),
        (
            SFB.replace("DIM", "ctx.dim").replace(", None", ""),
            "incorrect number of gradients",
        ),
    ],
    [
        # the Jacobian diag(y) - y y^T of each row, times g
        """
@staticmethod
def backward(ctx, g):
    (y,) = ctx.saved_tensors
    yd, gd = y.movedim(ctx.dim, -1), g.movedim(ctx.dim, -1)
    jac = torch.diag_embed(yd) - yd.unsqueeze(-1) * yd.unsqueeze(-2)
    return (jac @ gd.unsqueeze(-1)).squeeze(-1).movedim(-1, ctx.dim), None
""",
        """
@staticmethod
def backward(ctx, grad_y):
    y = ctx.saved_tensors[0]
    gy = grad_y * y
    return gy - y * gy.sum(ctx.dim, keepdim=True), None
""",
    ],
)

# 00: Vocab.encode ---------------------------------------------------------------
CASES["Vocab.encode"] = (
    "00_pytorch.ipynb",
    [
        (
            """
def encode(self, text: str) -> list[int]:
    return [self.stoi[ch] for ch in text if ch in self.stoi]
""",
            "none dropped",
        ),
        (
            """
def encode(self, text: str) -> list[int]:
    return [self.stoi.get(ch, 1) for ch in text]
""",
            "use self.unk_id",
        ),
        (
            """
def encode(self, text: str) -> list[int]:
    return [self.stoi.get(ch, self.unk_id) for ch in text]
""",
            "expected a KeyError",
        ),
    ],
    [
        # a search in itos, the unknown characters by hand
        """
def encode(self, text: str) -> list[int]:
    ids = []
    for ch in text:
        try:
            ids.append(self.itos.index(ch))
        except ValueError:
            if self.unk is None:
                raise KeyError(ch) from None
            ids.append(self.itos.index(self.unk))
    return ids
""",
    ],
)

# 00: Vocab.decode ---------------------------------------------------------------
CASES["Vocab.decode"] = (
    "00_pytorch.ipynb",
    [
        (
            """
def decode(self, ids) -> str:
    return "".join(self.itos[i] for i in ids)
""",
            "check 0 <= id < len(itos)",
        ),
        (
            """
def decode(self, ids) -> str:
    return "".join(self.itos[i] for i in ids if i >= len(self.specials))
""",
            "written as its name",
        ),
        (
            """
def decode(self, ids) -> str:
    out = []
    for i in ids:
        if not isinstance(i, int) or not 0 <= i < len(self.itos):
            raise IndexError(i)
        out.append(self.itos[i])
    return "".join(out)
""",
            ".tolist() gives ints",
        ),
    ],
    [
        """
def decode(self, ids) -> str:
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    if any(i < 0 or i >= len(self) for i in ids):
        raise IndexError(f"ids must be in 0..{len(self) - 1}")
    return "".join(map(self.itos.__getitem__, ids))
""",
    ],
)

# 01: bytes_to_unicode -----------------------------------------------------------
B2U = """
def bytes_to_unicode() -> dict[int, str]:
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out
"""
CASES["bytes_to_unicode"] = (
    "01_bytes.ipynb",
    [
        (
            """
def bytes_to_unicode() -> dict[int, str]:
    return {b: chr(b) for b in range(256)}
""",
            "shifted",
        ),
        (B2U.replace('ord("~") + 1', 'ord("~")'), "include both ends"),
        (B2U.replace("chr(256 + n)", "chr(256 + b)"), "not chr(256 + byte)"),
    ],
    [
        # the printable characters found by Python; the shifted ones appended
        """
def bytes_to_unicode() -> dict[int, str]:
    def shown(c):
        return c.isprintable() and not c.isspace()

    shifted = [b for b in range(256) if not shown(chr(b))]
    out = {b: chr(b) for b in range(256) if shown(chr(b))}
    out.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return dict(sorted(out.items()))
""",
        # GPT-2's own code
        """
def bytes_to_unicode() -> dict[int, str]:
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))
""",
    ],
)

# 01: unicode_to_bytes -----------------------------------------------------------
CASES["unicode_to_bytes"] = (
    "01_bytes.ipynb",
    [
        (
            """
def unicode_to_bytes() -> dict[str, int]:
    return {c: bytes([b]) for b, c in bytes_to_unicode().items()}
""",
            "not bytes objects",
        ),
        (
            """
def unicode_to_bytes() -> dict[str, int]:
    return {chr(b): b for b in range(256)}
""",
            "invert bytes_to_unicode",
        ),
    ],
    [
        # on its own, without bytes_to_unicode
        """
def unicode_to_bytes() -> dict[str, int]:
    out, n = {}, 0
    for b in range(256):
        c = chr(b)
        if c.isprintable() and not c.isspace():
            out[c] = b
        else:
            out[chr(256 + n)] = b
            n += 1
    return out
""",
    ],
)

# 01b: validity ------------------------------------------------------------------
VALIDITY = """
def validity(texts, grammar: Grammar = STORIES) -> dict:
    if isinstance(texts, str):
        texts = [t for t in texts.split(EOT) if t]
    texts = list(texts)
    if not texts:
        raise ValueError("no story")
    bits, nbytes, n_ok = 0.0, 0, 0
    for t in texts:
        lp = logprob(t, grammar)
        if lp == -math.inf:
            continue
        n_ok += 1
        bits -= lp / math.log(2)
        nbytes += len(t.encode("utf-8")) + len(EOT)
    bpb = bits / nbytes if n_ok else math.nan
    return {"n": len(texts), "valid": n_ok / len(texts), "bits_per_byte": bpb}
"""
NBYTES = '        nbytes += len(t.encode("utf-8")) + len(EOT)\n'
CASES["validity"] = (
    "01b_corpus.ipynb",
    [
        (VALIDITY.replace(" + len(EOT)", ""), "13 bytes of the EOT"),
        (VALIDITY.replace('len(t.encode("utf-8"))', "len(t)"), "UTF-8 bytes"),
        (  # the bytes of every story counted
            VALIDITY.replace(NBYTES, "").replace(
                "        if lp == -math.inf:\n",
                NBYTES + "        if lp == -math.inf:\n",
            ),
            "its bytes do not count",
        ),
        (VALIDITY.replace("n_ok / len(texts)", "n_ok"), "valid is a share"),
        (
            VALIDITY.replace("[t for t in texts.split(EOT) if t]", "texts.split(EOT)"),
            "drop the empty pieces",
        ),
        (
            VALIDITY.replace(
                "        texts = [t for t in texts.split(EOT) if t]\n", "        pass\n"
            ),
            "split a str at EOT",
        ),
    ],
    [VALIDITY],
)

# 01b: entropy_floor -------------------------------------------------------------
FLOOR_HEAD = """
def entropy_floor(
    n_stories: int = 20_000,
    tokenizer: object | None = None,
    seed: int = 12345,
    grammar: Grammar = STORIES,
) -> EntropyFloor:
"""
FLOOR = (
    FLOOR_HEAD
    + """\
    pairs = generate_stories(n_stories, seed=seed, with_logprob=True, grammar=grammar)
    nats = [-lp for _, lp in pairs]
    nbytes = [len(s.encode("utf-8")) + 13 for s, _ in pairs]
    bpb, ci = ratio_ci([x / math.log(2) for x in nats], nbytes)
    out = EntropyFloor(len(pairs), float(np.mean(nats)), float(np.mean(nbytes)),
                       bpb, ci)
    if tokenizer is not None:
        ntok = [len(tokenizer.encode(s)) + 1 for s, _ in pairs]
        out.tokens_per_story = float(np.mean(ntok))
        out.nats_per_token, out.nats_per_token_ci = ratio_ci(nats, ntok)
    return out
"""
)
FLOOR_OWN = (  # its own random numbers and its own interval
    FLOOR_HEAD
    + """\
    rng = np.random.default_rng(seed)
    pairs = [grammar.sample(lambda: int(rng.integers(2**63))) for _ in range(n_stories)]
    bits = np.array([-lp / math.log(2) for _, lp in pairs])
    nb = np.array([len(s.encode("utf-8")) + len(EOT) for s, _ in pairs])
    r = bits.sum() / nb.sum()
    half = 1.96 * (bits - r * nb).std(ddof=1) / nb.mean() / math.sqrt(n_stories)
    out = EntropyFloor(n_stories, bits.mean() * math.log(2), nb.mean(), r,
                       (r - half, r + half))
    if tokenizer is not None:
        nt = np.array([len(tokenizer.encode(s)) + 1 for s, _ in pairs])
        out.tokens_per_story = nt.mean()
        out.nats_per_token, out.nats_per_token_ci = ratio_ci(bits * math.log(2), nt)
    return out
"""
)
CASES["entropy_floor"] = (
    "01b_corpus.ipynb",
    [
        (FLOOR.replace(") + 13 for s", ") for s"), "13 for the EOT"),
        (FLOOR.replace('len(s.encode("utf-8"))', "len(s)"), "UTF-8 bytes"),
        (
            FLOOR.replace(
                "bpb, ci = ratio_ci([x / math.log(2) for x in nats], nbytes)",
                "ratios = [x / math.log(2) / y for x, y in zip(nats, nbytes)]\n"
                "    bpb, ci = float(np.mean(ratios)), (0.0, 1.0)",
            ),
            "a ratio of means",
        ),
        (FLOOR.replace("x / math.log(2) for x", "x for x"), "bits = nats / ln 2"),
        (FLOOR.replace("(s)) + 1 for s", "(s)) for s"), "1 for the EOT token"),
        (
            FLOOR.replace("seed=seed", "seed=np.random.randint(1000)"),
            "draw the stories from `seed`",
        ),  # fmt: skip
    ],
    [FLOOR, FLOOR_OWN],
)

# 02: count_pretokens ------------------------------------------------------------
COUNT_HEAD = """
def count_pretokens(
    text: str, special_tokens: list[str] | tuple[str, ...] = ()
) -> Counter:
"""
COUNT = (
    COUNT_HEAD
    + """\
    parts = [text]
    if special_tokens:
        longest = sorted(special_tokens, key=len, reverse=True)
        parts = regex.split("|".join(regex.escape(s) for s in longest), text)
    return Counter(t.encode("utf-8") for p in parts for t in pretokenize(p))
"""
)
CASES["count_pretokens"] = (
    "02_bpe.ipynb",
    [
        (
            COUNT_HEAD
            + '    return Counter(w.encode("utf-8") for w in text.split())\n',
            "str.split",
        ),
        (
            COUNT_HEAD
            + '    return Counter(t.encode("utf-8") for t in pretokenize(text))\n',
            "at the special tokens first",
        ),
        (COUNT.replace("regex.escape(s)", "s"), "regex.escape"),
        (  # a group in the pattern: split keeps the special tokens
            COUNT.replace('regex.split("|".join(', 'regex.split("(%s)" % "|".join('),
            "not counted",
        ),
        (COUNT.replace(", reverse=True", ""), "the longest first"),
        (COUNT.replace('t.encode("utf-8")', "t"), "counted as its UTF-8 bytes"),
    ],
    [
        # the special tokens found one by one, GPT-2's regex run here, a plain dict
        COUNT_HEAD
        + """\
    pat = regex.compile(
        r"'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
        r"|\\s+(?!\\S)|\\s+"
    )
    counts, start = {}, 0
    spans = []
    if special_tokens:
        alt = sorted(special_tokens, key=len, reverse=True)
        found = regex.finditer("|".join(map(regex.escape, alt)), text)
        spans = [m.span() for m in found]
    for a, b in spans + [(len(text), len(text))]:
        for m in pat.finditer(text, start, a):
            tok = m.group().encode("utf-8")
            counts[tok] = counts.get(tok, 0) + 1
        start = b
    return counts
""",
    ],
)

# 02: bpe_merges -----------------------------------------------------------------
BPE = """
def bpe_merges(word_counts, vocab_size, special_tokens=(), **kwargs):
    vocab = {i: bytes([i]) for i in range(256)}  # CS336's order: bytes, specials
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    words = {tuple(bytes([x]) for x in w): n for w, n in word_counts.items()}
    merges = []
    while len(vocab) < vocab_size:
        pairs = {}
        for w, n in words.items():
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        vocab[len(vocab)] = best[0] + best[1]
        new = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and w[i] == best[0] and w[i + 1] == best[1]:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + n
        words = new
    return vocab, merges
"""
BEST = "best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]"
MERGE_WORD = """\
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and w[i] == best[0] and w[i + 1] == best[1]:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
"""
OVERLAP = """\
            out = []
            for i in range(len(w)):
                if w[i : i + 2] == best:
                    out.append(best[0] + best[1])
                elif i == 0 or w[i - 1 : i + 1] != best:
                    out.append(w[i])
"""
CASES["bpe_merges"] = (
    "02_bpe.ipynb",
    [
        (BPE.replace(BEST, "best = max(pairs, key=pairs.get)"), "ties"),
        (BPE.replace(BEST, "best = min(pairs, key=lambda p: (-pairs[p], p))"), "ties"),
        (BPE.replace(MERGE_WORD, OVERLAP), "overlapping pairs"),
        (
            BPE.replace("if i < len(w) - 1 and", "if i < len(w) - 2 and"),
            "at the end of a word",
        ),  # fmt: skip
        (
            BPE.replace("pairs.get(p, 0) + n", "pairs.get(p, 0) + 1"),
            "times the word's count",
        ),  # fmt: skip
        (
            BPE.replace(
                "while len(vocab) < vocab_size", "while len(merges) < N"
            ).replace("    merges = []\n", "    merges, N = [], vocab_size - 256\n"),
            "counts the special tokens",
        ),
        (
            BPE.replace("vocab[len(vocab)] = best", "vocab[256 + len(merges)] = best"),
            "one id per token",
        ),  # fmt: skip
    ],
    [
        BPE,
        # the book's ids (specials, bytes, merges); lists of ids, merged in place
        """
def bpe_merges(word_counts, vocab_size, special_tokens=(), **kwargs):
    tok = [s.encode("utf-8") for s in special_tokens] + [bytes([x]) for x in range(256)]
    n_sp = len(special_tokens)
    words = [([n_sp + x for x in w], n) for w, n in word_counts.items()]
    merges = []
    while len(tok) < vocab_size:
        pairs = Counter()
        for w, n in words:
            for a, b in zip(w, w[1:]):
                pairs[a, b] += n
        if not pairs:
            break
        a, b = max(pairs, key=lambda p: (pairs[p], tok[p[0]], tok[p[1]]))
        c = len(tok)
        tok.append(tok[a] + tok[b])
        merges.append((tok[a], tok[b]))
        for w, _ in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    w[i : i + 2] = [c]
                i += 1
    return dict(enumerate(tok)), merges
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
