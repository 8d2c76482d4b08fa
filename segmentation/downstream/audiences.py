"""Campaign audiences: `audience_events`, who entered and exited each audience on each published
night and why, and `audience_members`, the membership now.

A night's members are a function of that night alone (its `segments`, the published nights
before it for `min_nights_in_segment`, its `segment_events` for `entered_from`, the suppression
lists); its events are the difference from the previous published night's members, and those
are the replay of the events of the published nights before (the last event of each customer
and audience: `entered` is a member). `audience_members` is that replay over every published
night. So the tables do not depend on the order nights ran in, a re-run replaces its night's
events with the same rows, and an unchanged night writes none. The group comes from `holdout`,
never from the previous night, so it never moves.

A night after every published one, when `audience_members` is as the night before left it (its
version in `nights`), takes the previous members from that table and applies only its own events
to it: its cost grows with the members and tonight's changes, not with the history. Any other
night replays the history, which also puts right a table something else changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, IntegerType, StringType, StructField, StructType

from segmentation.core import logs
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.config import AudienceConfig, Config
from segmentation.core.errors import AudienceError, InputError
from segmentation.downstream import holdout
from segmentation.downstream.events import MOVED as SEGMENT_MOVED
from segmentation.io import maintenance, tables

ENTERED, EXITED = "entered", "exited"
# Why: an entered customer is eligible; an exited one failed the first of these checks tonight.
ELIGIBLE = "eligible"
SUPPRESSED = "suppressed"  # on the audience's `exclude` list
MOVED = "moved"  # tonight's segment is not one of the audience's
BELOW_CONFIDENCE = "below_confidence"  # min_confidence
TOO_RECENT = "too_recent"  # min_nights_in_segment
NOT_ENTERED_FROM = "not_entered_from"  # entered_from: no move from those segments within the window (any more)
OUTRANKED = "outranked"  # exclusive_group: in an audience of lower priority number tonight
DEPARTED = "departed"  # not scored tonight
REMOVED = "audience_removed"  # the audience is no longer in the config

MEMBERS_SCHEMA = StructType(
    [
        StructField("audience", StringType(), False),
        StructField(ID_COLUMN, StringType(), False),
        StructField("group", StringType(), False),  # treatment | holdout
        StructField("segment_id", IntegerType(), False),  # the segment the customer entered from
        StructField("entered_run_date", DateType(), False),  # the night they entered (this time)
    ]
)

AUDIENCE_EVENTS_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("audience", StringType(), False),
        StructField(ID_COLUMN, StringType(), False),
        StructField("event", StringType(), False),  # entered | exited
        StructField("group", StringType(), False),  # treatment | holdout
        StructField("reason", StringType(), False),
        StructField("segment_id", IntegerType(), True),  # tonight's segment; null: departed
    ]
)
_STATUS_SCHEMA = "audience string, CUST_ID string, segment_id int, reason string, `group` string"


def check_segments(audiences: list[AudienceConfig], classes: list[int]) -> None:
    """Every audience's segments are segments of the model that scores the night."""
    known = set(classes)
    for audience in audiences:
        unknown = sorted(set(audience.segments) - known)
        if unknown:
            raise AudienceError(f"audience {audience.name!r}: segment id(s) {unknown} are not segments of the "
                                f"scoring model (its segments: {sorted(known)}); fix audiences[].segments")


def read_exclusions(spark: SparkSession, audience: AudienceConfig) -> DataFrame | None:
    """The audience's suppression list as distinct CUST_IDs (None: no list)."""
    if not audience.exclude:
        return None
    try:
        frame = tables.read_raw(spark, audience.exclude)
    except InputError as exc:
        raise AudienceError(f"audience {audience.name!r}: exclude list unreadable: {exc}") from None
    if ID_COLUMN not in frame.columns:
        raise AudienceError(f"audience {audience.name!r}: exclude list {audience.exclude} has no {ID_COLUMN} column "
                            f"(columns: {', '.join(frame.columns)})")
    return frame.select(F.col(ID_COLUMN).cast("string").alias(ID_COLUMN)).where(F.col(ID_COLUMN).isNotNull()).distinct()


def _flagged(night: DataFrame, keys: DataFrame | None, name: str, on: list[str]) -> DataFrame:
    """`night` with a boolean `name`: the row's keys are in `keys` (None: every row is)."""
    if keys is None:
        return night.withColumn(name, F.lit(True))
    return night.join(keys.select(*on).distinct().withColumn(name, F.lit(True)), on, "left").fillna(False, [name])


def statuses(night: DataFrame, audiences: list[AudienceConfig], stable: dict[int, DataFrame | None],
             moved_in: dict[str, DataFrame], excluded: dict[str, DataFrame]) -> DataFrame:
    """Per audience and customer of the night: `reason` null when a member tonight, else the first check failed.

    `stable[n]`: (CUST_ID, segment_id) in that segment on each of the last n published nights;
    `moved_in[name]`: (CUST_ID, segment_id) moved into that segment from the audience's
    `entered_from` segments within its window; `excluded[name]`: the suppressed CUST_IDs.
    """
    parts = []
    base = night.select(ID_COLUMN, "segment_id", "segment_confidence")
    for audience in audiences:
        listed = excluded.get(audience.name)
        rows = (_flagged(base, listed, "suppressed", [ID_COLUMN]) if listed is not None
                else base.withColumn("suppressed", F.lit(False)))
        n = audience.min_nights_in_segment
        if n and stable.get(n) is None:
            rows = rows.withColumn("stable", F.lit(False))  # fewer published nights than n
        else:
            rows = _flagged(rows, stable[n] if n else None, "stable", [ID_COLUMN, "segment_id"])
        rows = _flagged(rows, moved_in.get(audience.name) if audience.entered_from else None, "moved_in",
                        [ID_COLUMN, "segment_id"])
        confident = (F.col("segment_confidence") >= F.lit(audience.min_confidence)
                     if audience.min_confidence is not None else F.lit(True))
        reason = (F.when(F.col("suppressed"), SUPPRESSED)
                  .when(~F.col("segment_id").isin(audience.segments), MOVED)
                  .when(~confident, BELOW_CONFIDENCE)
                  .when(~F.col("stable"), TOO_RECENT)
                  .when(~F.col("moved_in"), NOT_ENTERED_FROM))
        parts.append(rows.select(
            F.lit(audience.name).alias("audience"), ID_COLUMN, "segment_id", reason.alias("reason"),
            holdout.group_column(audience.salt, audience.holdout_share).alias("group"),
            F.lit(audience.exclusive_group).alias("exclusive_group"), F.lit(audience.priority).alias("priority"),
        ))
    if not parts:
        return night.sparkSession.createDataFrame([], _STATUS_SCHEMA)
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    # Within an exclusive group a customer stays only in the eligible audience of lowest priority.
    eligible = F.col("reason").isNull()
    w = Window.partitionBy("exclusive_group", ID_COLUMN, eligible).orderBy("priority")
    rank = F.when(eligible & (F.col("exclusive_group") != ""), F.row_number().over(w))
    return (out.withColumn("rank", rank)
            .withColumn("reason", F.when(F.col("rank") > 1, F.lit(OUTRANKED)).otherwise(F.col("reason")))
            .select("audience", ID_COLUMN, "segment_id", "reason", "group"))


def members_from(events: DataFrame) -> DataFrame:
    """MEMBERS_SCHEMA rows: the replay of `events` (already limited to the nights wanted)."""
    w = Window.partitionBy("audience", ID_COLUMN).orderBy(F.col(RUN_DATE).desc())
    last = events.withColumn("_n", F.row_number().over(w)).where((F.col("_n") == 1) & (F.col("event") == ENTERED))
    return last.select("audience", ID_COLUMN, "group", "segment_id", F.col(RUN_DATE).alias("entered_run_date"))


def night_events(status: DataFrame, previous: DataFrame, run_date: dt.date, configured: list[str]) -> DataFrame:
    """AUDIENCE_EVENTS_SCHEMA rows: tonight's `status` against the previous night's members."""
    keys = ["audience", ID_COLUMN]
    joined = status.withColumn("seen", F.lit(True)).alias("s").join(previous.alias("p"), keys, "full_outer")
    member_now = F.col("s.seen").isNotNull() & F.col("s.reason").isNull()
    was_member = F.col("p.entered_run_date").isNotNull()
    event = F.when(member_now & ~was_member, ENTERED).when(~member_now & was_member, EXITED)
    reason = (F.when(member_now, ELIGIBLE)
              .when(~F.col("audience").isin(configured) if configured else F.lit(True), REMOVED)
              .when(F.col("s.seen").isNull(), DEPARTED)
              .otherwise(F.col("s.reason")))
    columns = {
        RUN_DATE: F.lit(run_date),
        "audience": F.col("audience"),
        ID_COLUMN: F.col(ID_COLUMN),
        "event": F.col("event"),
        "group": F.coalesce("p.group", "s.group"),
        "reason": reason,
        "segment_id": F.col("s.segment_id"),
    }
    return (joined.withColumn("event", event).where(F.col("event").isNotNull())
            .select(*[columns[c].alias(c) for c in AUDIENCE_EVENTS_SCHEMA.fieldNames()]))


# ---------------------------------------------------------------------------------------------
# the night's tables


def _ref(cfg: Config, name: str) -> tables.TableRef:
    return tables.table_ref(cfg.tables, getattr(cfg.tables, name))


def in_use(spark: SparkSession, cfg: Config) -> bool:
    """Audiences are configured, or were (their members still have to exit)."""
    return bool(cfg.audiences) or tables.exists(spark, _ref(cfg, "audience_events"))


def _replayed(spark: SparkSession, cfg: Config, nights: list[dt.date]) -> DataFrame:
    """The members after the published `nights` (the events of no other night count)."""
    ref = _ref(cfg, "audience_events")
    if not nights or not tables.exists(spark, ref):
        return spark.createDataFrame([], MEMBERS_SCHEMA)
    return members_from(tables.read_delta(spark, ref).where(F.col(RUN_DATE).isin(nights)))


def tonight(spark: SparkSession, cfg: Config, run_date: dt.date, upto: list[dt.date]) -> DataFrame:
    """`statuses` of `run_date`, whose published nights up to and with it are `upto` (oldest first)."""
    segments = tables.read_delta(spark, _ref(cfg, "segments"))
    night = segments.where(F.col(RUN_DATE) == F.lit(run_date))
    stable: dict[int, DataFrame | None] = {}
    for n in {a.min_nights_in_segment for a in cfg.audiences if a.min_nights_in_segment}:
        window = upto[-n:]
        stable[n] = None if len(window) < n else (
            segments.where(F.col(RUN_DATE).isin(window)).groupBy(ID_COLUMN, "segment_id").count()
            .where(F.col("count") == n).select(ID_COLUMN, "segment_id"))
    moved_in: dict[str, DataFrame] = {}
    events_ref = _ref(cfg, "segment_events")
    for a in cfg.audiences:
        if a.entered_from is None:
            continue
        moves = tables.read_delta(spark, events_ref) if tables.exists(spark, events_ref) else None
        moved_in[a.name] = (
            spark.createDataFrame([], f"{ID_COLUMN} string, segment_id int") if moves is None else
            moves.where(F.col(RUN_DATE).isin(upto[-a.entered_from.within_nights:])
                        & (F.col("event") == SEGMENT_MOVED) & F.col("from_segment_id").isin(a.entered_from.segments))
            .select(ID_COLUMN, F.col("to_segment_id").alias("segment_id")))
    excluded = {a.name: frame for a in cfg.audiences if (frame := read_exclusions(spark, a)) is not None}
    return statuses(night, cfg.audiences, stable, moved_in, excluded)


def derive(spark: SparkSession, cfg: Config, run_date: dt.date, published: list[dt.date], tag: str) -> None:
    """Replaces `run_date`'s audience_events: tonight against the members after the published nights before it."""
    before = [d for d in published if d < run_date]
    events = night_events(tonight(spark, cfg, run_date, [*before, run_date]), _replayed(spark, cfg, before),
                          run_date, [a.name for a in cfg.audiences])
    tables.replace_run(events, _ref(cfg, "audience_events"), run_date, stats_columns=["audience", ID_COLUMN], tag=tag)


def holds(spark: SparkSession, cfg: Config, version: int | None) -> bool:
    """Whether audience_members is still as it was at `version` (the night before's
    `members_version`): nothing but maintenance committed to it since."""
    ref = _ref(cfg, "audience_members")
    if version is None or not tables.exists(spark, ref):
        return False
    latest = tables.latest_version(spark, ref)
    return latest == version or (latest > version and maintenance.only_maintenance_since(spark, ref, version))


def apply_night(spark: SparkSession, cfg: Config, run_date: dt.date) -> int:
    """audience_members after `run_date`'s events, from the members before them: `entered` adds
    the member (or replaces it), `exited` removes it, as the replay would with `run_date` last.
    Returns the events applied (none: nothing is committed)."""
    ref = _ref(cfg, "audience_members")
    night = tables.read_run(spark, _ref(cfg, "audience_events"), run_date).persist()
    try:
        changed = night.count()
        if changed:
            entered = {"audience": "s.audience", ID_COLUMN: f"s.{ID_COLUMN}", "`group`": "s.`group`",
                       "segment_id": "s.segment_id", "entered_run_date": f"s.{RUN_DATE}"}
            (tables.delta_table(spark, ref).alias("t")
             .merge(night.alias("s"), f"t.audience = s.audience AND t.{ID_COLUMN} = s.{ID_COLUMN}")
             .whenMatchedDelete(condition=f"s.event = '{EXITED}'")
             .whenMatchedUpdate(condition=f"s.event = '{ENTERED}'", set=entered)
             .whenNotMatchedInsert(condition=f"s.event = '{ENTERED}'", values=entered)
             .execute())
        return changed
    finally:
        night.unpersist()


def rebuild_members(spark: SparkSession, cfg: Config, published: list[dt.date]) -> int:
    """Makes audience_members the replay of every published night's events, writing only the rows
    that differ (an unchanged night commits nothing). Returns how many differed."""
    ref = _ref(cfg, "audience_members")
    if not tables.exists(spark, ref):
        tables.append(spark.createDataFrame([], MEMBERS_SCHEMA), ref)
    expected = _replayed(spark, cfg, published)
    now = tables.read_delta(spark, ref)
    keys = ["audience", ID_COLUMN]
    values = [c for c in MEMBERS_SCHEMA.fieldNames() if c not in keys]
    same = F.lit(True)
    for c in values:
        same = same & F.col(f"e.{c}").eqNullSafe(F.col(f"n.{c}"))
    on = [F.col(f"e.{k}") == F.col(f"n.{k}") for k in keys]
    diff = (expected.alias("e").join(now.alias("n"), on, "full_outer")
            .where(~(same & F.col(f"e.{ID_COLUMN}").isNotNull() & F.col(f"n.{ID_COLUMN}").isNotNull()))
            .select(*[F.coalesce(f"e.{k}", f"n.{k}").alias(k) for k in keys],
                    F.col(f"e.{ID_COLUMN}").isNull().alias("gone"), *[F.col(f"e.{c}").alias(c) for c in values])
            .persist())
    try:
        differing = diff.count()
        if differing:
            match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            (tables.delta_table(spark, ref).alias("t").merge(diff.alias("s"), match)
             .whenMatchedDelete(condition="s.gone")
             .whenMatchedUpdate(set={f"`{c}`": f"s.`{c}`" for c in values})
             .whenNotMatchedInsert(condition="NOT s.gone",
                                   values={f"`{c}`": f"s.`{c}`" for c in MEMBERS_SCHEMA.fieldNames()})
             .execute())
        return differing
    finally:
        diff.unpersist()


def counts(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, dict[str, int]]:
    """Per audience: members now (and in holdout), and `run_date`'s entered and exited (a few rows)."""
    out: dict[str, dict[str, int]] = {a.name: {"members": 0, "holdout": 0, ENTERED: 0, EXITED: 0}
                                      for a in cfg.audiences}
    for r in (tables.read_delta(spark, _ref(cfg, "audience_members"))
              .groupBy("audience", "group").count().collect()):
        figures = out.setdefault(r["audience"], {"members": 0, "holdout": 0, ENTERED: 0, EXITED: 0})
        figures["members"] += r["count"]
        figures["holdout"] += r["count"] if r["group"] == holdout.HOLDOUT else 0
    for r in tables.read_run(spark, _ref(cfg, "audience_events"), run_date).groupBy("audience", "event").count().collect():
        out.setdefault(r["audience"], {"members": 0, "holdout": 0, ENTERED: 0, EXITED: 0})[r["event"]] = r["count"]
    return out


def summary_text(figures: dict[str, dict[str, int]]) -> str:
    """`name:members=M,holdout=H,entered=E,exited=X;...` for the nightly summary line."""
    return ";".join(f"{name}:members={f['members']},holdout={f['holdout']},entered={f[ENTERED]},exited={f[EXITED]}"
                    for name, f in sorted(figures.items()))


def reach(configured: list[AudienceConfig]) -> int:
    """How many published nights after a night its segments still shape: the next night compares
    members with it; `min_nights_in_segment` counts it for that many nights (it among them);
    `entered_from` looks back `within_nights` at moves, and the move of the night after it is
    measured against it."""
    return max([1, *[a.min_nights_in_segment - 1 for a in configured if a.min_nights_in_segment],
                *[a.entered_from.within_nights for a in configured if a.entered_from is not None]])


def refresh(spark: SparkSession, cfg: Config, run_date: dt.date, published: list[dt.date], tag: str,
            members_before: int | None = None) -> dict[str, Any]:
    """`run_date`'s audience events (and the next published night's, which compares with it), then
    audience_members. `published`: the published nights, `run_date` among them. `members_before`:
    the night before's `members_version`; when `run_date` comes after every published night and
    audience_members is still at that version, only tonight's events are applied to it, else
    every published night's events are replayed. Returns, with the figures, audience_members'
    version after the night (`members_version`)."""
    log = logs.get("audiences")
    published = sorted({*published, run_date})
    following = [d for d in published if d > run_date][:reach(cfg.audiences)]
    incremental = not following and holds(spark, cfg, members_before)
    members_ref = _ref(cfg, "audience_members")
    with logs.step(log, "write audience events") as s:
        if incremental:
            events = night_events(tonight(spark, cfg, run_date, published), tables.read_delta(spark, members_ref),
                                  run_date, [a.name for a in cfg.audiences])
            tables.replace_run(events, _ref(cfg, "audience_events"), run_date,
                               stats_columns=["audience", ID_COLUMN], tag=tag)
        else:
            derive(spark, cfg, run_date, published, tag)
        for later in following:  # a backfill: these nights' events depend on this one now, in order
            derive(spark, cfg, later, published, tag)
        s.detail = f"audiences={len(cfg.audiences)} from={'members' if incremental else 'replay'}" + (
            f" rederived={','.join(map(str, following))}" if following else "")
    if incremental:
        with logs.step(log, "apply tonight's events to audience_members") as s:
            s.rows = apply_night(spark, cfg, run_date)
    else:
        with logs.step(log, "rebuild audience_members") as s:
            s.rows = rebuild_members(spark, cfg, published)
    figures = counts(spark, cfg, run_date)
    return {"audiences": figures, "tables": [str(_ref(cfg, "audience_events")), str(members_ref)],
            "members_version": tables.latest_version(spark, members_ref)}
