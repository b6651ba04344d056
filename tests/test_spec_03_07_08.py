"""The spec tests of chapters 03, 07 and 08, tested both ways: typical wrong versions
of each unit are rejected with a message that names the bug (the key words below), and
correct versions written unlike the book's pass; so does the book's own, and the
exercise's stub fails."""

import pytest

from llm_tutorial.exercises import (
    _in_words,
    book_nbs,
    locate,
    read_notebook,
    run_specs,
    spec_cells,
    spec_name,
    unit_limit,
)
from spec_cases import check_both_ways, versions

# unit -> (notebook, [(wrong version, key words its message must hold)], [correct])
CASES = {}

# bpe_merge -----------------------------------------------------------------------
_MERGE_LOOP = """
def bpe_merge(ids, ranks):
    while len(ids) > 1:
        found = [(ranks[p], p) for p in zip(ids, ids[1:]) if p in ranks]
        if not found:
            break
        (rank, new), (a, b) = PICK
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == (a, b):
                out.append(new)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids
"""
CASES["bpe_merge"] = (
    "03_tokenizer.ipynb",
    [
        (_MERGE_LOOP.replace("PICK", "max(found)"), "not the highest"),
        (_MERGE_LOOP.replace("PICK", "found[0]"), "not the leftmost"),
        (  # the last id lost
            _MERGE_LOOP.replace("PICK", "min(found)")
            .replace("while i < len(ids):", "while i < len(ids) - 1:")
            .replace("i + 1 < len(ids) and ", ""),
            "the last one too",
        ),
        (  # one round only
            _MERGE_LOOP.replace("PICK", "min(found)")
            .replace("while len(ids) > 1:", "for _ in [1]:")
            .replace("break", "return ids"),
            "repeat until no adjacent pair is a merge",
        ),
    ],
    [
        # one occurrence at a time: the leftmost of the lowest rank
        """
def bpe_merge(ids, ranks):
    ids = list(ids)
    while True:
        pairs = enumerate(zip(ids, ids[1:]))
        cands = [(ranks[p][0], i) for i, p in pairs if p in ranks]
        if not cands:
            return ids
        _, i = min(cands)
        ids[i : i + 2] = [ranks[(ids[i], ids[i + 1])][1]]
""",
        # CS336's way: every merge in rank order, each applied once
        """
def bpe_merge(ids, ranks):
    for (a, b), (_, new) in sorted(ranks.items(), key=lambda kv: kv[1]):
        out, i = [], 0
        while i < len(ids):
            if ids[i : i + 2] == [a, b]:
                out.append(new)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return list(ids)
""",
    ],
)

# Tokenizer.encode ----------------------------------------------------------------
_ENC = """
def encode(self, text: str) -> list[int]:
"""
_SPLIT = """
    out = []
    for part in re.split(PATTERN, text):
        if part in self.special_ids:
            out.append(self.special_ids[part])
        elif part:
            out += self.encode_ordinary(part)
    return out
"""
_IN_ORDER = '"(" + "|".join(re.escape(s) for s in self.special_tokens) + ")"'
_LONGEST = '"(" + "|".join(re.escape(s) for s in LONGEST) + ")"'.replace(
    "LONGEST", "sorted(self.special_tokens, key=len, reverse=True)"
)
CASES["Tokenizer.encode"] = (
    "03_tokenizer.ipynb",
    [
        (_ENC + "    return self.encode_ordinary(text)\n", "split the text at"),
        (  # the special tokens in the order given
            _ENC
            + "    if not self.special_tokens:\n"
            + "        return self.encode_ordinary(text)\n"
            + _SPLIT.replace("PATTERN", _IN_ORDER),
            "match the longest first",
        ),
        (  # an empty list of special tokens: the pattern "()" splits everywhere
            _ENC + _SPLIT.replace("PATTERN", _LONGEST),
            "nothing splits the text",
        ),
        (  # no pre-tokens: merges across words
            _ENC
            + "    ids = [self._byte_ids[b] for b in text.encode('utf-8')]\n"
            + "    return bpe_merge(ids, self._ranks)\n",
            "pre-tokens with the GPT-2 pattern",
        ),
    ],
    [
        # minbpe's way: bytes, merges by rank of the byte pair, longest special first
        _ENC
        + """
    rank = {pair: r for r, pair in enumerate(self.merges)}
    specials = sorted(self.special_tokens, key=len, reverse=True)
    parts = [text]
    if specials:
        parts = regex.split("(" + "|".join(map(regex.escape, specials)) + ")", text)
    out = []
    for part in parts:
        if part in specials:
            out.append(self.token_to_id[part.encode("utf-8")])
            continue
        for word in regex.findall(self.pattern, part):
            toks = [bytes([b]) for b in word.encode("utf-8")]
            while len(toks) > 1:
                pairs = zip(toks, toks[1:])
                r, i = min((rank.get(p, math.inf), i) for i, p in enumerate(pairs))
                if r == math.inf:
                    break
                toks[i : i + 2] = [toks[i] + toks[i + 1]]
            out += [self.token_to_id[t] for t in toks]
    return out
""",
        # a scan for the special tokens, longest first at each position
        _ENC
        + """
    specials = sorted(self.special_tokens, key=len, reverse=True)
    out, start, i = [], 0, 0
    while i < len(text):
        hit = next((s for s in specials if text.startswith(s, i)), None)
        if hit is None:
            i += 1
            continue
        out += self.encode_ordinary(text[start:i])
        out.append(self.special_ids[hit])
        i = start = i + len(hit)
    return out + self.encode_ordinary(text[start:])
""",
    ],
)

# Tokenizer.decode ----------------------------------------------------------------
_DEC = """
def decode(self, ids) -> str:
"""
CASES["Tokenizer.decode"] = (
    "03_tokenizer.ipynb",
    [
        (
            _DEC
            + "    parts = [self.vocab[i].decode('utf-8', 'replace') for i in ids]\n"
            + "    return ''.join(parts)\n",
            "join all the bytes first",
        ),
        (
            _DEC + "    return b''.join(self.vocab[i] for i in ids).decode('utf-8')\n",
            "errors='replace'",
        ),
        (
            _DEC
            + "    data = b''.join(self.vocab[i] for i in ids)\n"
            + "    return data.decode('utf-8', errors='ignore')\n",
            "not nothing",
        ),
    ],
    [
        _DEC
        + """
    out = bytearray()
    for i in ids:
        out += self.vocab[i]
    return out.decode("utf-8", "replace")
""",
        _DEC
        + """
    import codecs

    step = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = "".join(step.decode(self.vocab[i]) for i in ids)
    return text + step.decode(b"", final=True)
""",
    ],
)

# Tokenizer.encode_iterable -------------------------------------------------------
_ITER = """
def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
"""
CASES["Tokenizer.encode_iterable"] = (
    "03_tokenizer.ipynb",
    [
        (  # each chunk on its own
            _ITER
            + "    for chunk in iterable:\n"
            + "        yield from self.encode(chunk)\n",
            "where the chunks are cut",
        ),
        (  # everything first
            _ITER + "    yield from self.encode(''.join(iterable))\n",
            "not lazy",
        ),
        (
            _ITER + "    for chunk in iterable:\n        yield self.encode(chunk)\n",
            "yield the ids one by one",
        ),
    ],
    [
        # cut only at a line break between two non-spaces: no pre-token crosses it
        _ITER
        + """
    buf = ""
    for chunk in iterable:
        buf += chunk
        cut = None
        for m in re.finditer(r"(?<=\\S)\\n(?=\\S)", buf):
            cut = m.end()
        if cut is not None:
            yield from self.encode(buf[:cut])
            buf = buf[cut:]
    yield from self.encode(buf)
""",
    ],
)

# get_batch -----------------------------------------------------------------------
_GB = """
def get_batch(x, batch_size, context_length, device, generator=None):
    m = context_length
"""
_GB_BODY = """
    gen = as_generator(generator)
    starts = torch.randint(0, HIGH, (batch_size,), generator=gen).tolist()
    xs = [torch.from_numpy(x[s : s + m].astype(DTYPE)) for s in starts]
    ys = [torch.from_numpy(x[s + 1 : s + m + 1].astype(DTYPE)) for s in starts]
    return torch.stack(xs).to(device), torch.stack(YS).to(device)
"""


def _gb(high="len(x) - m", dtype="np.int64", ys="ys", body=_GB_BODY):
    return _GB + body.replace("HIGH", high).replace("DTYPE", dtype).replace("YS", ys)


_STARTS = "torch.randint(0, len(x) - m, (batch_size,), generator=gen)"
_CHUNKS = "torch.randint(0, (len(x) - 1) // m, (batch_size,), generator=gen).mul(m)"
_RETURN = "torch.stack(xs).to(device), torch.stack(ys).to(device)"
_SWAPPED = "torch.stack(ys).to(device), torch.stack(xs).to(device)"
_GB_RESEEDED = _GB_BODY.replace(
    "gen = as_generator(generator)",
    "gen = as_generator(generator)\n"
    + "    if gen is not None:\n"
    + "        gen = torch.Generator().manual_seed(gen.initial_seed())",
)
CASES["get_batch"] = (
    "07_data.ipynb",
    [
        (_gb(high="len(x) - m + 1"), "a start past n-m-1"),
        (_gb(high="len(x) - m - 1"), "every start 0..n-m-1"),
        (_gb().replace(_STARTS, _CHUNKS), "every start 0..n-m-1"),
        (_gb(ys="xs"), "shifted by one"),
        (_gb().replace(_RETURN, _SWAPPED), "x and y swapped"),
        (_gb(dtype="np.int32"), "int64"),
        (_gb(body=_GB_BODY.replace("gen = as_generator(generator)", "gen = None")),
         "an int generator is a seed"),
        (_gb(body=_GB_RESEEDED), "advances"),
    ],
    [
        _gb(),  # CS336's way: two slices a row (each window read twice)
        _GB
        + """
    u = torch.rand(batch_size, generator=as_generator(generator), dtype=torch.float64)
    starts = (u * (len(x) - m)).long().numpy()
    idx = starts[:, None] + np.arange(m + 1)
    w = torch.as_tensor(np.asarray(x)[idx]).long()
    return w[:, :m].to(device), w[:, 1:].to(device)
""",
    ],
)

# save_checkpoint, load_checkpoint ------------------------------------------------
_SAVE = """
def save_checkpoint(model, optimizer, iteration, out, **extra):
"""
_BOOK_FORMAT = """
    ckpt = dict(format=CHECKPOINT_FORMAT, iteration=int(iteration),
                model=model.state_dict(), optimizer=OPT)
    header, payload = _pack(ckpt)
"""
_WRITE = """
    if isinstance(out, (str, os.PathLike)):
        with open(out, "wb") as f:
            f.write(header + payload)
    else:
        out.write(header + payload)
"""
_CS336_SAVE = (
    _SAVE
    + """
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "iteration": iteration}
    torch.save(state, out)
"""
)
CASES["save_checkpoint"] = (
    "08_checkpoint.ipynb",
    [
        (_SAVE + _BOOK_FORMAT.replace("OPT", "None") + _WRITE, "no optimizer state"),
        (_CS336_SAVE, "checked as a pair"),
        (  # a path only
            _SAVE
            + _BOOK_FORMAT.replace("OPT", "optimizer.state_dict()")
            + "    with atomic_write(out, 'wb') as f:\n"
            + "        f.write(header + payload)\n",
            "BytesIO",
        ),
    ],
    [_SAVE + _BOOK_FORMAT.replace("OPT", "optimizer.state_dict()") + _WRITE],
)
_LOAD = """
def load_checkpoint(src, model, optimizer=None, restore_rng=True):
    ckpt = src if isinstance(src, dict) else read_checkpoint(src)
"""
_CS336_LOAD = """
def load_checkpoint(src, model, optimizer=None, restore_rng=True):
    state = torch.load(src)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["iteration"]
"""
CASES["load_checkpoint"] = (
    "08_checkpoint.ipynb",
    [
        (
            _LOAD
            + "    model.load_state_dict(ckpt['model'])\n"
            + "    return ckpt['iteration']\n",
            "optimizer.load_state_dict",
        ),
        (
            _LOAD
            + "    model.load_state_dict(ckpt['model'])\n"
            + "    optimizer.load_state_dict(ckpt['optimizer'])\n",
            "return the iteration",
        ),
        (  # the dict state_dict() returns is a copy of the references
            _LOAD
            + "    model.state_dict().update(ckpt['model'])\n"
            + "    optimizer.load_state_dict(ckpt['optimizer'])\n"
            + "    return ckpt['iteration']\n",
            "model.load_state_dict",
        ),
    ],
    [
        _LOAD
        + """
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(ckpt["model"][name])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    return int(ckpt["iteration"])
""",
    ],
)


# units graded together, each version of the pair written by the learner
_CS336_PAIR = {"save_checkpoint": _CS336_SAVE, "load_checkpoint": _CS336_LOAD}
PAIRS = {"load_checkpoint": [_CS336_PAIR]}


@pytest.fixture(scope="module")
def graded() -> dict[str, list[dict]]:
    "Every version of every unit (and the pairs), graded in one child process."
    runs, spans = [], {}
    for unit, (notebook, wrong, right) in CASES.items():
        texts = versions(notebook, unit, wrong, right)
        nb, start = read_notebook(book_nbs() / notebook), len(runs)
        runs += [{"cells": spec_cells(nb, {unit: t}),
                  "units": [(unit, spec_name(unit), locate(nb, unit)[0])]}
                 for t in texts]  # fmt: skip
        for swap in PAIRS.get(unit, []):
            swap = {u: t.strip("\n") for u, t in swap.items()}
            runs.append({"cells": spec_cells(nb, swap),
                         "units": [(u, spec_name(u), locate(nb, u)[0]) for u in swap]})
        spans[unit] = (start, len(runs))
    got = run_specs(runs, unit_limit()[0])
    return {unit: got[a:b] for unit, (a, b) in spans.items()}


@pytest.mark.parametrize("unit", list(CASES))
def test_spec_both_ways(unit, graded):
    notebook, wrong, right = CASES[unit]
    n = 2 + len(wrong) + len(right)
    got = graded[unit]
    check_both_ways(unit, [r[unit] for r in got[:n]], wrong, right)
    for swap, r in zip(PAIRS.get(unit, []), got[n:]):
        for u in swap:  # e.g. CS336's save and load, torch.save / torch.load of a dict
            assert r[u]["ok"], f"{u} of a correct pair fails: {_in_words(r[u])}"
