"""What only the SQLite backend does: telling new readings from duplicates after one bulk insert."""

from __future__ import annotations

import sqlite3

from gateway.store.db import Filter, open_store
from gateway.store.intake import Batch, Message

T0 = 1_795_341_600_000


def batch(*seqs: int) -> Batch:
    out = Batch(received_ms=T0)
    for seq in seqs:
        out.add(Message("river-01", seq, "river", "telemetry", "level", T0 + seq, "{}"))
    return out


def counts(url: str, top_rowid: bool) -> list[object]:
    store = open_store(url)
    if top_rowid:  # the largest rowid taken: SQLite numbers new rows at random from here on
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "INSERT INTO messages (rowid, device, seq, kind, channel, type, ts_ms, "
                "received_ms, data) VALUES (?, 'other-01', 0, 'river', 'event', 'x', 0, 0, '{}')",
                (2**63 - 1,),
            )
    results = [store.write(batch(0, 1, 2, 5, 5)), store.write(batch(2, 6, 7, 1))]
    device = store.device("river-01")
    seqs = [m.seq for m in store.messages(Filter(device="river-01"), 100)]
    store.close()
    return [results, device, seqs]


def test_duplicates_are_told_apart_however_sqlite_numbers_rows(tmp_path):
    usual = counts(f"sqlite:///{tmp_path / 'usual.db'}", top_rowid=False)
    assert usual == counts(f"sqlite:///{tmp_path / 'top.db'}", top_rowid=True)
    results, device, seqs = usual
    assert [(r.stored, r.duplicates) for r in results] == [(4, 1), (2, 2)]
    assert (device.received, device.duplicates, device.min_seq, device.max_seq) == (6, 3, 0, 7)
    assert seqs == [0, 1, 2, 5, 6, 7]
