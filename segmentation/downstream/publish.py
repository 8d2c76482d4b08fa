"""A night's publication: `segments` -> shares, events, migrations, drift, `segments_current`, the
audiences, then `nights` says PUBLISHED. Readers take only published nights, so they see a night whole or not at all.

Every table is a function of the published nights, not of the order they came in: a night's
shares of itself, its events, migrations and share changes against the published night before
it. A backfilled or re-run night D therefore also rewrites what the next published night
derived from D, and `segments_current` is rebuilt unless D comes after every published night.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from segmentation.core import logs
from segmentation.core.columns import RUN_DATE
from segmentation.core.config import Config
from segmentation.core.errors import AudienceError, FeaturesNotFoundError
from segmentation.downstream import audiences, current, drift, shares
from segmentation.downstream.events import events
from segmentation.downstream.migrations import migrations_from_events
from segmentation.io import nights, runs, tables
from segmentation.model import registry
from segmentation.model.store import ModelBundle

OK, DRIFT = "ok", "drift"
# What a night writes for itself; the first five are the stages' own, the rest the publication's.
NIGHT_TABLES = ("features", "quarantine", "imputation", "night_profile", "segments",
                "segment_shares", "segment_events", "segment_migrations", "drift", "audience_events")


def features_drift(spark: SparkSession, cfg: Config, model: ModelBundle, features: DataFrame) -> dict[str, float]:
    """PSI of every model feature of tonight's features against the model's training sample."""
    if not model.drift_reference:
        logs.get("drift").warning("model %s has no drift reference (trained before drift existed): PSI skipped",
                                  model.version)
        return {}
    return drift.feature_psi(features, model.drift_reference)


def _ref(cfg: Config, name: str) -> tables.TableRef:
    return tables.table_ref(cfg.tables, getattr(cfg.tables, name))


def _neighbours(published: list[dt.date], run_date: dt.date) -> tuple[dt.date | None, dt.date | None]:
    before = [d for d in published if d < run_date]
    after = [d for d in published if d > run_date]
    return (before[-1] if before else None), (after[0] if after else None)


def _derive_from(spark: SparkSession, cfg: Config, run_date: dt.date, previous_date: dt.date | None,
                 tag: str) -> int:
    """`run_date`'s events and migrations against `previous_date`; returns the events written."""
    segments_ref = _ref(cfg, "segments")
    night = tables.read_run(spark, segments_ref, run_date)
    before = tables.read_run(spark, segments_ref, previous_date) if previous_date else None
    events_ref = _ref(cfg, "segment_events")
    tables.replace_run(events(night, before, run_date, previous_date), events_ref, run_date, tag=tag)
    # From the events just written: one join of the night with the night before, not two.
    night_events = tables.read_run(spark, events_ref, run_date)
    tables.replace_run(migrations_from_events(night, night_events, run_date, previous_date),
                       _ref(cfg, "segment_migrations"), run_date, tag=tag)
    return tables.written_rows(spark, events_ref, run_date, tag)


def _share_changes(spark: SparkSession, cfg: Config, run_date: dt.date, previous_date: dt.date | None,
                   tonight: dict[int, float] | None = None) -> dict[int, float]:
    """Share changes of `run_date` against `previous_date`; `tonight`: its shares when already at hand."""
    if previous_date is None:
        return {}
    wanted = [previous_date] if tonight is not None else [run_date, previous_date]
    two_nights = tables.read_delta(spark, _ref(cfg, "segment_shares")).where(
        F.col(RUN_DATE).isin(*wanted)
    ).select(RUN_DATE, "segment_id", "share").collect()  # a few rows per night
    if tonight is None:
        tonight = {r.segment_id: r.share for r in two_nights if r[RUN_DATE] == run_date}
    before = {r.segment_id: r.share for r in two_nights if r[RUN_DATE] == previous_date}
    return drift.share_changes(tonight, before)


def _rewrite_share_changes(spark: SparkSession, cfg: Config, run_date: dt.date, previous_date: dt.date | None,
                           tag: str) -> None:
    """The next night's drift rows with its share changes measured against `previous_date` again;
    its PSI rows (against its model, not against a night) stay as they are."""
    ref = _ref(cfg, "drift")
    kept = [r.asDict() for r in tables.read_run(spark, ref, run_date).where(F.col("measure") == drift.PSI).collect()]
    version = kept[0]["model_version"] if kept else (
        tables.read_run(spark, _ref(cfg, "segment_shares"), run_date).select("model_version").first()[0])
    dc = cfg.drift
    records = kept + drift.rows(run_date, version, {}, _share_changes(spark, cfg, run_date, previous_date),
                                dc.psi_threshold, dc.share_change_points, previous_date)
    tables.replace_run(spark.createDataFrame(records, drift.DRIFT_SCHEMA), ref, run_date, tag=tag)


def _update_current(spark: SparkSession, cfg: Config, run_date: dt.date, published: list[dt.date],
                    previous_date: dt.date | None, before: Row | None, following: dt.date | None,
                    changes: int) -> tuple[str, int | None]:
    """Applies tonight to segments_current: its `changes` events when it holds the night before
    (`before`: that night's `nights` row), else a rebuild."""
    ref = _ref(cfg, "segments_current")
    version = tables.latest_version(spark, ref) if tables.exists(spark, ref) else None
    if previous_date is None:
        holds_previous = version is None
    else:
        holds_previous = version is not None and before is not None and before["current_version"] == version
    if following is None and holds_previous:
        if changes:
            night_events = tables.read_run(spark, _ref(cfg, "segment_events"), run_date)
            current.apply_events(spark, night_events, ref, run_date, previous_date)
        else:
            current.ensure_table(spark, ref)
        return "events", changes
    segments = tables.read_delta(spark, _ref(cfg, "segments"))
    return "rebuild", current.rebuild(spark, segments, sorted({*published, run_date}), ref)


def publish_night(spark: SparkSession, cfg: Config, run_date: dt.date, model: ModelBundle, features: DataFrame,
                  psis: dict[str, float] | None, tag: str, run_id: str | None = None,
                  started_at: dt.datetime | None = None) -> dict[str, Any]:
    """After `segments` holds the night: every downstream table, then `nights` says PUBLISHED.

    `psis`: the features' PSI when the scoring pass measured it; else it is measured here.
    """
    log = logs.get("score")
    try:
        audiences.check_segments(cfg.audiences, model.classes)
    except AudienceError:
        set_aside(spark, cfg, run_date, tag)
        raise
    every_night = nights.all_nights(spark, cfg)  # read once for the whole publication
    published = [r[RUN_DATE] for r in every_night if r["status"] == nights.PUBLISHED and r[RUN_DATE] != run_date]
    previous_date, following = _neighbours(published, run_date)
    previous_row = next((r for r in every_night if r[RUN_DATE] == previous_date), None)
    segments_ref = _ref(cfg, "segments")
    with logs.step(log, "write segment shares") as s:
        # One row per segment: kept on the driver, so nothing below reads tonight's shares back.
        tonight = shares.shares(tables.read_run(spark, segments_ref, run_date)).collect()
        tables.replace_run(spark.createDataFrame(tonight, shares.SHARES_SCHEMA), _ref(cfg, "segment_shares"),
                           run_date, tag=tag)
        s.rows = len(tonight)
    with logs.step(log, "write segment events and migrations") as s:
        s.rows = changed = _derive_from(spark, cfg, run_date, previous_date, tag)
        s.detail = f"previous_run_date={previous_date}"
        if following is not None:  # a backfill: the next published night compares with this one now
            _derive_from(spark, cfg, following, run_date, tag)
            s.detail += f" rederived={following}"
    with logs.step(log, "measure drift") as s:
        counted_by = "score" if psis is not None else "aggregate"
        if psis is None:
            psis = features_drift(spark, cfg, model, features)
        changes = _share_changes(spark, cfg, run_date, previous_date, {r.segment_id: r.share for r in tonight})
        dc = cfg.drift
        records = drift.rows(run_date, model.version, psis, changes, dc.psi_threshold, dc.share_change_points,
                             previous_date)
        tables.replace_run(spark.createDataFrame(records, drift.DRIFT_SCHEMA), _ref(cfg, "drift"), run_date, tag=tag)
        if following is not None:
            _rewrite_share_changes(spark, cfg, following, run_date, tag)
        flagged = [f"{r['measure']}:{r['name']}={r['value']:.3f}" for r in records if r["flagged"]]
        status = DRIFT if flagged else OK
        s.rows = len(records)
        s.detail = f"status={status} bins_counted_by={counted_by} max_psi={max(psis.values(), default=0):.3f} " + (
            f"max_share_change={max((abs(v) for v in changes.values()), default=0):.2f}pts")
    with logs.step(log, "merge segments_current") as s:
        how, rows = _update_current(spark, cfg, run_date, published, previous_date, previous_row, following, changed)
        s.rows = rows
        s.detail = f"by={how} changed={changed} table={_ref(cfg, 'segments_current')}"
    refreshed = audiences.refresh(spark, cfg, run_date, published, tag, nights.members_version(previous_row)) \
        if audiences.in_use(spark, cfg) else {}
    with logs.step(log, "publish the night") as s:
        customers = sum(r.customers for r in tonight)
        version = tables.latest_version(spark, _ref(cfg, "segments_current"))
        nights.publish(spark, cfg, run_date, model.version, customers, version, runs.utc_now(), run_id=run_id,
                       tag=tag, started_at=started_at, members_version=refreshed.get("members_version"))
        s.detail = f"table={nights.ref(cfg)} segments_current_version={version}"
    if flagged:
        log.warning("DRIFT on %s against model %s: %s", run_date, model.version, ", ".join(flagged))
    names = ("segment_shares", "segment_events", "segment_migrations", "drift", "segments_current", "nights")
    return {"drift_status": status, "drift_flags": flagged, "changes": changed,
            "tables": [str(_ref(cfg, n)) for n in names] + refreshed.get("tables", []),
            "audiences": refreshed.get("audiences", {})}


def set_aside(spark: SparkSession, cfg: Config, run_date: dt.date, tag: str) -> str:
    """Puts `run_date`'s tables back as they were before the run that wrote with `tag`, derives
    the next published night again from what is published now, and settles `nights` and
    `segments_current`.

    Returns "restored" when the night was published before that run (it is again), else
    "removed" (the night never was).
    """
    log = logs.get("nightly")
    published = [d for d in nights.published(spark, cfg) if d != run_date]
    tables.restore_night(spark, log, [_ref(cfg, n) for n in NIGHT_TABLES], run_date, tag)
    segments = _ref(cfg, "segments")
    left = tables.read_run(spark, segments, run_date) if tables.exists(spark, segments) else None
    row = left.agg(F.count(F.lit(1)).alias("n"), F.max("model_version").alias("m")).first() if left else None
    if row is not None and row["n"]:
        outcome = "restored"
        nights.publish(spark, cfg, run_date, row["m"], int(row["n"]), None, runs.utc_now())
        published = sorted({*published, run_date})
    else:
        outcome = "removed"
        nights.remove(spark, cfg, run_date)
    # The next published night may have been derived from the dead run's rows: derive it again
    # (a later run may have written it since, so its rows are not put back from before).
    following = next((d for d in published if d > run_date), None)
    if following is not None:
        before = [d for d in published if d < following]
        previous_date = before[-1] if before else None
        write_tag = tables.new_write_tag("set-aside")
        _derive_from(spark, cfg, following, previous_date, write_tag)
        _rewrite_share_changes(spark, cfg, following, previous_date, write_tag)
        if audiences.in_use(spark, cfg):
            audiences.derive(spark, cfg, following, published, write_tag)
    members_ref = _ref(cfg, "audience_members")
    if audiences.in_use(spark, cfg) and tables.exists(spark, members_ref):
        audiences.rebuild_members(spark, cfg, published)
    current_ref = _ref(cfg, "segments_current")
    if tables.exists(spark, current_ref):
        current.rebuild(spark, tables.read_delta(spark, segments), published, current_ref)
        latest = published[-1] if published else None
        if latest is not None:  # the latest night holds the tables again: the next night can apply its events
            mark = nights.get(spark, cfg, latest)
            members = tables.latest_version(spark, members_ref) if tables.exists(spark, members_ref) else None
            nights.publish(spark, cfg, latest, mark["model_version"], mark["customers"],
                           tables.latest_version(spark, current_ref), mark["published_at"] or runs.utc_now(),
                           run_id=mark["run_id"], tag=mark["write_tag"], started_at=mark["started_at"],
                           members_version=members)
    return outcome


def settle(spark: SparkSession, cfg: Config) -> list[dt.date]:
    """Sets aside every night a dead run left PUBLISHING; returns those nights.

    A night whose run is still RUNNING is left alone (it may be writing now): readers do not
    take it, and the run that ends it, or the first run after it is marked ABANDONED, settles it.
    """
    log = logs.get("nightly")
    settled = []
    for night in nights.all_nights(spark, cfg):
        if night["status"] != nights.PUBLISHING:
            continue
        status = runs.status(spark, cfg, night["run_id"]) if night["run_id"] else None
        if status == runs.RUNNING:
            log.warning("night %s is unpublished: run %s is still RUNNING; readers skip it until it ends",
                        night[RUN_DATE], night["run_id"])
            continue
        outcome = set_aside(spark, cfg, night[RUN_DATE], night["write_tag"])
        log.warning("night %s was left unpublished by run %s (%s): set aside, its tables put back (%s); "
                    "re-run that date to publish it", night[RUN_DATE], night["run_id"], status or "no run recorded",
                    "as published before" if outcome == "restored" else "it had never been published")
        settled.append(night[RUN_DATE])
    return settled


def refresh_audiences(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """The audiences job: `run_date`'s audience tables again from its published tables, for an
    audience added or changed since the night ran (the night itself refreshes them when published)."""
    settle(spark, cfg)
    published = nights.published(spark, cfg)
    if run_date not in published:
        raise FeaturesNotFoundError(f"night {run_date} is not published: run the nightly (or score) job for it first")
    version = nights.get(spark, cfg, run_date)["model_version"]
    if version and cfg.audiences:  # null: a night published before `nights` recorded its model
        audiences.check_segments(cfg.audiences, registry.load(cfg, version).bundle.classes)
    refreshed = audiences.refresh(spark, cfg, run_date, published, tables.new_write_tag("audiences"))
    return {"tables": refreshed["tables"], "audiences": audiences.summary_text(refreshed["audiences"])}
