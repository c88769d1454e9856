"""Build time of the static report site for 200 incidents (docs/benchmarks.md §10).
Run: python benchmarks/bench_site.py"""

import tempfile
import time
from pathlib import Path

from athar.publish.site.build import SiteOptions, build_site
from athar.records.service import Records
from athar.vault.vault import Vault

d = Path(tempfile.mkdtemp())
v = Vault.create(d / "v", "كلمة سر طويلة للاختبار — bench")
with Records(v) as r:
    ids = [
        r.create(
            "incident",
            {
                "title.ar": f"حادثة {n}",
                "title.en": f"Incident {n}",
                "date": f"2017-{n % 12 + 1:02d}-03",
                "place.admin_area": ["حلب", "إدلب", "حمص"][n % 3],
                "place.coordinates": "36.2,37.1",
                "killed.total": f"{n % 5}-{n % 5 + 2}",
            },
        )
        for n in range(200)
    ]
    t = time.perf_counter()
    build_site(r, d / "site", SiteOptions(include=ids))
    print(
        f"200 incidents: {time.perf_counter() - t:.2f} s, files:",
        sum(1 for p in (d / "site").rglob("*") if p.is_file()),
    )
