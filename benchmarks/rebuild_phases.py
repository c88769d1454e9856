"""The steps of ``Records.rebuild`` timed one by one (wall, this process's CPU, the reader
child's CPU), on the cached 1M-event vault of bench_records.py. The steps are repeated
here, not imported, so a hook can time each; keep them in step with records/service.py.

    python benchmarks/rebuild_phases.py [VAULT] [--indexes-after]

"stream" ends once every batch is written and people's statuses are derived; the next
step is the secondary indexes (created in the load's transaction) and the wait for the
reader's search index, copied in; --indexes-after creates the indexes after the commit
instead, as Records.rebuild did before.
"""

import resource
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import itertools
from pathlib import Path

from athar.records import store
from athar.records.projection import Projection
from athar.records.rebuild import rebuild_into
from athar.records.service import Records, paused_gc
from athar.vault.vault import Vault
from benchcommon import PASSPHRASE, Noise

args = [a for a in sys.argv[1:] if not a.startswith("--")]
vault = args[0] if args else "/tmp/athar-bench-records/rebuild/vault"
v = Vault.open(Path(vault), PASSPHRASE)
records = Records(v)
marks = []


def mark(name):
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    marks.append((name, time.perf_counter(), r.ru_utime + r.ru_stime, c.ru_utime + c.ru_stime))


noise = Noise()
mark("start")
fresh_path = records._file.with_name(store.FILE_NAME + ".rebuild")
store.remove_database(fresh_path)
engine = store.sqlite_engine(fresh_path, records._file_key, bulk=True)
fresh = Projection(engine, records.vault_id, bulk=True)
indexes = store.drop_secondary_indexes(engine)
mark("setup")
orig_hash = store._fts_hash


def hooked(conn, size):
    mark("fts-hash-" + str(size))
    orig_hash(conn, size)


store._fts_hash = hooked
orig_many = Projection.refresh_all_people


def hooked_people(self, conn=None):
    orig_many(self, conn)
    if conn is not None:
        mark("stream")


Projection.refresh_all_people = hooked_people
orig_put = getattr(store, "put_search_index", None)  # None: code from before it
if orig_put is not None:

    def hooked_put(conn, tables):
        mark("indexes (in the load) + wait for the reader's search index")
        orig_put(conn, tables)
        mark("search index copied")

    store.put_search_index = hooked_put
later = "--indexes-after" in sys.argv  # the steps as before: indexes after the commit
with paused_gc(), store.bulk_load(engine) as conn:
    if later:  # also what code from before rebuild_into took the indexes runs
        stats = rebuild_into(fresh, conn, v.ledger.event_reader(), None)
    else:
        stats = rebuild_into(fresh, conn, v.ledger.event_reader(), None, indexes)
    mark("end of load")
mark("commit")
if later:
    with engine.begin() as conn:  # as code from before rebuild_into took them did
        for statement in indexes:
            conn.exec_driver_sql(statement)
    mark("indexes")
fresh.refresh_all_people()
mark("people")
engine.dispose()
records.engine.dispose()
store.replace_database(fresh_path, records._file)
mark("replace")
out = []
for (_n0, w0, p0, c0), (n1, w1, p1, c1) in itertools.pairwise(marks):
    out.append(f"{n1}: wall {w1 - w0:.1f} parent {p1 - p0:.1f} reader {c1 - c0:.1f}")
print("\n".join(out))
first, last = marks[0], marks[-1]
print(
    f"total wall {last[1] - first[1]:.1f} parent {last[2] - first[2]:.1f} "
    f"reader {last[3] - first[3]:.1f} other {noise.foreign_cpu_s():.1f} "
    f"size {records._file.stat().st_size / 1e6:.0f} MB"
)
rec = Records(v)
print(rec.counts(), stats.applied, stats.ignored)
