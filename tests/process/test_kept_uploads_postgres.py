"""Kept uploads in a PostgreSQL history (tests/support/postgres.py): the ``kept_uploads`` table's schema step on an
existing database, keep/read/prune and refused names, the monolith's private temp file, and two dashboard
replicas with data folders of their own: an image classified through one has its thumbnail served by the other."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

from dashboard.classify.uploads import Upload
from dashboard.common.kept_uploads import DatabaseUploads, kept_uploads_for
from dashboard.history.migrations import SCHEMA_VERSION
from dashboard.history.store import HistoryStore
from dashboard.monolith.controller import run_monolith_view
from dashboard.settings import DashboardSettings
from tests.support.standin import shade_png


def upload(n: int, size: int = 100) -> Upload:
    return Upload(f"img-{n}.png", f"{n:0{size}d}".encode())


def test_a_postgresql_history_keeps_uploads_in_its_table_shared_and_bounded(postgres_url, tmp_path):
    stores = [HistoryStore(postgres_url) for _ in range(2)]  # two replicas
    kept = [kept_uploads_for(tmp_path / f"replica-{n}" / "uploads", store) for n, store in enumerate(stores)]
    assert all(isinstance(k, DatabaseUploads) for k in kept)
    image = upload(1)
    with ThreadPoolExecutor(4) as pool:  # the same image kept by both replicas at once: one row
        list(pool.map(lambda n: kept[n % 2].keep(image), range(8)))
    assert kept[1].read(image.sha256) == image.data and kept[0].contains(image.sha256)
    for name in ("../x", "A" * 64, "ab" * 31, "' OR ''='"):
        assert kept[1].read(name) is None and not kept[1].contains(name)
    more = [upload(n) for n in range(2, 9)]
    for one in more:
        kept[0].keep(one)
    kept[1].keep(image)  # kept again: the newest
    assert kept[0].prune(max_count=4, max_bytes=10_000) == 4
    assert [kept[1].contains(i.sha256) for i in [image, *more]] == [True, False, False, False, False, True, True, True]
    assert kept[1].prune(max_count=4, max_bytes=250) == 2  # 100 bytes each: two fit
    assert [i for i in [image, *more] if kept[0].contains(i.sha256)] == [image, more[-1]]
    assert not (tmp_path / "replica-0").exists()  # nothing on a replica's disk
    for store in stores:
        store.dispose()


def test_the_schema_step_adds_the_table_to_an_existing_postgresql_history(postgres_url):
    store = HistoryStore(postgres_url)
    store.add({"kind": "service", "ok": True, "latency_ms": 4.0, "image": "old.png"})
    with store.engine.begin() as conn:  # as the previous dashboard left it: schema version 2
        conn.execute(sa.text("DROP TABLE kept_uploads"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version > 2"))
    store.dispose()
    store = HistoryStore(postgres_url)
    with store.engine.connect() as conn:
        versions = list(conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars())
    assert SCHEMA_VERSION >= 3 and versions == list(range(1, SCHEMA_VERSION + 1))
    assert [r["image"] for r in store.recent()] == ["old.png"]
    DatabaseUploads(lambda: store.engine).keep(upload(1))
    assert DatabaseUploads(lambda: store.engine).read(upload(1).sha256) == upload(1).data
    store.dispose()


def test_the_monolith_runs_on_a_private_temp_file_removed_after_the_run(postgres_url, tmp_path):
    settings = DashboardSettings(data_dir=tmp_path / "data", db_path=postgres_url)
    store = HistoryStore(postgres_url)
    image = Upload("cat.png", shade_png(30))
    kept_uploads_for(settings.uploads_dir, store).keep(image)
    seen = {}

    def runner(path, **_options):
        seen.update(path=path, data=path.read_bytes(), mode=stat.S_IMODE(path.parent.stat().st_mode))
        return {"top": [{"label": "tabby", "p": 0.9}]}, 1234.0

    run_monolith_view(settings, store, image.sha256, runner=runner)
    assert seen["data"] == image.data and seen["mode"] == 0o700
    assert not seen["path"].exists() and not seen["path"].parent.exists()
    assert not settings.uploads_dir.exists()
    assert store.recent(1)[0]["kind"] == "monolith"
    store.dispose()


def classify_body(server_url: str, png: bytes, name: str) -> dict:
    """The body the browser posts when a file is dropped on the upload zone."""
    dependencies = requests.get(server_url + "/_dash-dependencies", timeout=10).json()
    classify = next(d for d in dependencies if "session-results.data" in d["output"] and
                    any(i["id"] == "upload" for i in d["inputs"]))
    data_url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    values = {("upload", "contents"): [data_url], ("upload", "filename"): [name]}

    def entry(spec: dict):
        if spec["id"].startswith("{"):  # a pattern-matching (ALL) input: no example was clicked
            return []
        return {"id": spec["id"], "property": spec["property"], "value": values.get((spec["id"], spec["property"]))}

    outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
               for part in classify["output"].strip(".").split("...")]
    return {"output": classify["output"], "outputs": outputs, "inputs": [entry(s) for s in classify["inputs"]],
            "state": [entry(s) for s in classify["state"]], "changedPropIds": ["upload.contents"]}


def test_an_image_classified_through_one_replica_has_its_thumbnail_served_by_another(postgres_url, standin_server,
                                                                                     dashboard, tmp_path):
    backend = standin_server()
    replicas = [dashboard(backend, "--db", postgres_url, "--data-dir", str(tmp_path / f"data-{n}")) for n in "ab"]
    png = shade_png(77)
    sha256 = hashlib.sha256(png).hexdigest()
    thumbnail = f"/thumbnails/{sha256}.jpg"
    assert requests.get(replicas[1].url + thumbnail, timeout=10).status_code == 404  # not kept yet
    reply = requests.post(replicas[0].url + "/_dash-update-component", timeout=30,
                          json=classify_body(replicas[0].url, png, "shade.png"))
    assert reply.status_code == 200, reply.text[:500]
    assert sha256 in json.dumps(reply.json())  # classified: the result is in this tab's session results
    served = requests.get(replicas[1].url + thumbnail, timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert served.content[:3] == b"\xff\xd8\xff"
    assert not list((tmp_path / "data-a").glob("uploads/*"))  # kept in the shared history, not on A's disk
    for replica in replicas:
        replica.stop_within(10)
