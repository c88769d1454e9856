"""One full rebuild of the cached 1M vault: wall, own CPU, reader CPU, other CPU.

    python benchmarks/rebuild_cpu.py [VAULT] [--prof] [--hash]

--prof profiles the writer (this process); --hash adds SHA-256 digests of the rebuilt
store's content (every row of each table, the schema, the search index's documents as
(term, row id) pairs, and FTS5's own tables byte for byte), to compare two versions of
the code on the same vault.
"""

import json
import resource
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from pathlib import Path

from athar.records.service import Records
from athar.vault.vault import Vault
from benchcommon import PASSPHRASE, Noise

# table -> the columns that order its rows (its primary key)
_TABLES = {
    "records": "rid",
    "terms": "rid, vocabulary, term",
    "links": "src, rel, dst",
    "history": "seq, record",
    "vocab_terms": "vocabulary, term",
    "meta": "key",
    "sqlite_master": "type, name",
    # the search index: every (term, document) pair, then FTS5's own tables as stored
    "temp.fts_pairs": "term, doc",
    "records_fts_docsize": "id",
    "records_fts_data": "id",
    "records_fts_idx": "segid, term",
    "records_fts_config": "k",
}


def content_digests(engine):
    """SHA-256 of each table's rows in key order (the schema: name and SQL of every
    object), and one over all of them but FTS5's raw pages (content_sha256)."""
    import hashlib

    out = {}
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute(
            "CREATE VIRTUAL TABLE temp.fts_pairs USING fts5vocab(main, records_fts, instance)"
        )
        whole = hashlib.sha256()
        for table, order in _TABLES.items():
            cols = (
                "name, sql"
                if table == "sqlite_master"
                else "term, doc"
                if table.endswith("pairs")
                else "*"
            )
            where = " WHERE name NOT LIKE 'sqlite_autoindex%'" if table == "sqlite_master" else ""
            digest, n = hashlib.sha256(), 0
            for row in raw.execute(f"SELECT {cols} FROM {table}{where} ORDER BY {order}"):
                digest.update(repr(row).encode())
                n += 1
            out[f"sha256_{table}"] = f"{digest.hexdigest()[:16]} ({n} rows)"
            if not table.startswith("records_fts_") or table == "records_fts_docsize":
                whole.update(digest.digest())
        raw.execute("DROP TABLE temp.fts_pairs")
    out["content_sha256"] = whole.hexdigest()
    return out


args = [a for a in sys.argv[1:] if not a.startswith("--")]
vault = args[0] if args else "/tmp/athar-bench-records/rebuild/vault"
v = Vault.open(Path(vault), PASSPHRASE)
rec = Records(v)
before = rec.counts()
r0 = resource.getrusage(resource.RUSAGE_SELF)
c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
noise = Noise()
t = time.perf_counter()
if "--prof" in sys.argv:
    import cProfile
    import pstats

    p = cProfile.Profile()
    p.enable()
    stats = rec.rebuild()
    p.disable()
    pstats.Stats(p).sort_stats("tottime").print_stats(30)
else:
    stats = rec.rebuild()
wall = time.perf_counter() - t
r1 = resource.getrusage(resource.RUSAGE_SELF)
c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
after = rec.counts()
digests = content_digests(rec.engine) if "--hash" in sys.argv else {}
print(
    json.dumps(
        {
            "wall": round(wall, 1),
            "parent_cpu": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
            "reader_cpu": round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 1),
            "other_cpu": round(noise.foreign_cpu_s(), 1),
            "peak_rss_mib": r1.ru_maxrss // 1024,
            "reader_rss_mib": c1.ru_maxrss // 1024,
            "applied": stats.applied,
            "ignored": stats.ignored,
            "equal": before == after,
            "counts": after,
            **digests,
        }
    )
)
