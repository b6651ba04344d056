"""What the both-ways tests of the spec tests share (tests/test_spec_*.py): the texts
of a unit's versions and the verdict on them. A file's `CASES` map a unit to
`(notebook, [(wrong version, key words its message must hold)], [correct versions])`."""

from llm_tutorial.exercises import (
    _in_words,
    _source,
    book_nbs,
    locate,
    read_notebook,
    stub_source,
    unit_text,
)


def versions(notebook: str, unit: str, wrong: list, right: list) -> list[str]:
    "The stub, the book's version, the wrong versions, then the correct ones."
    nb = read_notebook(book_nbs() / notebook)
    src = _source(nb["cells"][locate(nb, unit)[0]])
    stub = unit_text(stub_source(src, unit, "write me"), unit)
    texts = [stub, unit_text(src, unit)] + [w for w, _ in wrong] + right
    return [t.strip("\n") for t in texts]


def check_both_ways(unit: str, results: list[dict], wrong: list, right: list) -> None:
    "The stub fails, the book passes, each wrong version fails naming its bug, each"
    " correct one passes (`results` in the order of `versions`)."
    stub, book = results[:2]
    assert not stub["ok"] and "NotImplementedError" in stub["error"], stub
    assert book["ok"], _in_words(book)
    for (text, key), r in zip(wrong, results[2 : 2 + len(wrong)]):
        assert not r["ok"], f"{unit}: a wrong version passes:\n{text}"
        assert key in _in_words(r), f"{unit}: {key!r} not in\n{_in_words(r)}\n{text}"
    for text, r in zip(right, results[2 + len(wrong) :]):
        assert r["ok"], f"{unit}: a correct version fails:\n{text}\n{_in_words(r)}"
