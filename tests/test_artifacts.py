"""Dashboard artifacts of front trials: attached once each, whoever attaches them."""

from __future__ import annotations

import threading
import time

import cosearch

from .conftest import QUICK_TOML


def test_workers_finishing_together_attach_the_front_once(tmp_path, monkeypatch):
    # both workers read the record of attached trials before either wrote it, and both
    # uploaded the whole front: 16 of 99 front trials had their files twice
    import optuna.artifacts

    from cosearch._artifacts import front_artifacts

    url = f"sqlite:///{tmp_path / 'a.db'}"
    text = QUICK_TOML.format(name="art", trials=12, seed=1, strategy="random")
    cfg = cosearch.parse_config(text)  # artifacts = "front" by default
    first = cosearch.Campaign(cfg, cosearch.open_store(url))
    first.run()
    study = first.study
    study.set_user_attr("cosearch.front_artifacts", {})  # as before any worker attached
    real = optuna.artifacts.upload_artifact

    def slow_upload(**kw):
        time.sleep(0.05)  # leaves the other worker time to read the record
        return real(**kw)

    monkeypatch.setattr(optuna.artifacts, "upload_artifact", slow_upload)
    workers = [cosearch.Campaign(cfg, cosearch.open_store(url)) for _ in range(2)]
    counts = []
    threads = [
        threading.Thread(target=lambda c=c: counts.append(front_artifacts(c, c.pareto())))
        for c in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    front = first.pareto()
    assert sorted(counts) == [0, len(front)]
    attached = study.user_attrs["cosearch.front_artifacts"]
    assert sorted(attached) == sorted(str(t.number) for t in front)


def test_a_store_copied_without_its_artifacts_gets_them_back(tmp_path):
    """Copied without its `.artifacts` folder, a database still listed every file: resuming
    only added the new front trials', and the dashboard answered 500 for each lost one."""
    import shutil

    import optuna
    from optuna.artifacts import get_all_artifact_meta

    from cosearch._artifacts import artifact_store

    url = f"sqlite:///{tmp_path / 'a.db'}"
    cfg = cosearch.parse_config(QUICK_TOML.format(name="cp", trials=10, seed=2, strategy="random"))
    cosearch.Campaign(cfg, cosearch.open_store(url)).run()
    shutil.rmtree(tmp_path / "a.db.artifacts")
    c = cosearch.Campaign(cfg, cosearch.open_store(url))
    c.run(12)
    store = artifact_store(url)
    listed = get_all_artifact_meta(optuna.load_study(study_name="cp", storage=url))
    assert listed
    for meta in listed:  # every artifact the dashboard lists can be opened
        store.open_reader(meta.artifact_id).close()
    attached = c.study.user_attrs["cosearch.front_artifacts"]
    assert sorted(attached) == sorted(str(t.number) for t in c.pareto())
