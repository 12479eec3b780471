"""The engine's contract: any bytes in, a verdict out, the same verdict every time."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swordfish.analysis import TenantPolicy, Verdict, analyze
from swordfish.analysis.commands import iter_messages

from .helpers import SA, SUBLIME

REAL = [raw for folder in (SA / "spam", SA / "nice", SUBLIME) for _, raw in iter_messages(folder)]
POLICY = TenantPolicy(domains=["example.com"], vip_names=["Joshua Kamdjou"], allow_list=["gmail.com"])
EVERYTHING = frozenset({"QR_CODE_LURE"})


def _check(raw: bytes) -> None:
    verdict = analyze(raw, POLICY, lambda c: {x: "urlhaus" for x in sorted(c)[:1]}, experimental=EVERYTHING)
    assert isinstance(verdict, Verdict)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(raw):
    _check(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(REAL) - 1), seed=st.integers(0, 2**32 - 1),
       edits=st.integers(1, 40), junk=st.binary(min_size=1, max_size=64))
def test_mutated_real_mail_never_raises(index, seed, edits, junk):
    rng = random.Random(seed)
    data = bytearray(REAL[index])
    for _ in range(edits):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if op == 0:
            data[pos:pos] = junk
        elif op == 1:
            del data[pos:pos + rng.randrange(1, 200)]
        elif op == 2 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        else:  # truncate, duplicate a slice, or swap line endings
            data = data[:pos] + data[pos // 2:pos] if rng.random() < 0.5 else data.replace(b"\n", b"\r\n")
    _check(bytes(data))


def test_same_input_gives_the_same_verdict():
    for raw in REAL[:20]:
        assert analyze(raw, POLICY) == analyze(raw, POLICY)


def test_non_bytes_input_does_not_raise():
    assert isinstance(analyze("From: a@b.com\n\nhi"), Verdict)  # type: ignore[arg-type]
