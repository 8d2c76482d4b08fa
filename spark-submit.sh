#!/usr/bin/env bash
# ./spark-submit.sh JOB [options]   JOB: features | train | score | nightly | generate | report | promote | maintain | audiences | lift | forget | serve
#
# Job options (--profile, --set, --input, --run-date, --config, --conf-dir, --retrain) go to the
# job; everything else (--master, --conf, --executor-memory, ...) goes to spark-submit. With no
# --master the job runs locally on all cores. The package travels as a zip (--py-files), config
# and log settings as --files, Delta's jars by --packages: what a cluster needs, not only local mode.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JOB="${1:-}"
case "$JOB" in
  features|train|score|nightly|generate|report|promote|maintain|audiences|lift|forget|serve) shift ;;
  *) echo "usage: $0 {features|train|score|nightly|generate|report|promote|maintain|audiences|lift|forget|serve} [job options] [spark-submit options]" >&2; exit 2 ;;
esac

VENV="${SEGMENTATION_VENV:-$ROOT/.venv}"
if [ -x "$VENV/bin/spark-submit" ]; then
  SUBMIT="$VENV/bin/spark-submit"; PY="$VENV/bin/python"
elif command -v spark-submit >/dev/null 2>&1; then
  SUBMIT="$(command -v spark-submit)"; PY="$(command -v python3)"
else
  echo "spark-submit not found: run 'make install' first (creates $VENV)" >&2; exit 2
fi
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PY}"

spark_args=(); job_args=(); files=(); master=""; conf_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile|--set|--input|--run-date|--rows|--seed|--output|--format|--partitions|--model-version|--version|--port|\
    --nights|--movement|--move-share|--departure-share|--arrival-share|--drift-from|--drift-scale|--responses|--ids)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      job_args+=("$1" "$2"); shift 2 ;;
    --config)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      job_args+=("$1" "$2"); files+=("$2"); shift 2 ;;
    --conf-dir)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      conf_dir="$2"; shift 2 ;;
    --profile=*|--set=*|--input=*|--run-date=*|--config=*|--rows=*|--seed=*|--output=*|--format=*|--partitions=*|--model-version=*|--version=*|--port=*|\
    --nights=*|--movement=*|--move-share=*|--departure-share=*|--arrival-share=*|--drift-from=*|--drift-scale=*|--responses=*|--ids=*|--retrain|--retrain-on-drift|--accept-night|--reshape|--previous)
      job_args+=("$1"); shift ;;
    -h|--help)
      if [ "$JOB" = serve ]; then job_args+=("$1"); else spark_args+=("$1"); fi; shift ;;
    --master)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      master="$2"; shift 2 ;;
    --master=*)
      master="${1#--master=}"; shift ;;
    *)
      spark_args+=("$1"); shift ;;
  esac
done
conf_dir="${conf_dir:-$ROOT/conf}"
[ -f "$conf_dir/base.yaml" ] || { echo "--conf-dir $conf_dir: no base.yaml there" >&2; exit 2; }

# serve needs no Spark: the model is checked whole, then MLflow's scoring server runs on it.
if [ "$JOB" = serve ]; then
  [ ${#spark_args[@]} -eq 0 ] && [ -z "$master" ] || { echo "serve takes no spark-submit options: ${spark_args[*]} ${master:+--master $master}" >&2; exit 2; }
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m jobs.serve --conf-dir "$conf_dir" "${job_args[@]+"${job_args[@]}"}"
fi

# The package as one zip for the executors' (and driver's) Python path, with its data files (.json).
# Each launch builds its own temporary zip (mktemp) and moves it into place in one rename, so two
# launches at once never write into each other's file; what a launch leaves behind goes on exit.
mkdir -p "$ROOT/build"
ZIP="$ROOT/build/segmentation-pyfiles.zip"
SCRATCH="$(mktemp -d "$ROOT/build/launch.XXXXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
TMP_ZIP="$SCRATCH/segmentation-pyfiles.zip"
"$PY" - "$ROOT" "$TMP_ZIP" <<'PYEOF'
import importlib.util, pathlib, sys, zipfile
root, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
spec = importlib.util.spec_from_file_location("_build", root / "segmentation" / "core" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
info = build.BUILD_INFO_MODULE.replace(".", "/") + ".py"
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
    for package in ("segmentation", "jobs"):
        for path in sorted([*(root / package).rglob("*.py"), *(root / package).rglob("*.json")]):
            if path.relative_to(root).as_posix() != info:
                zf.write(path, path.relative_to(root))
    # The commit, for code_version on a cluster, where the zip has no .git beside it.
    zf.writestr(info, build.build_info_source(build.git_commit(root), ""))
PYEOF
mv -f "$TMP_ZIP" "$ZIP"

DELTA_VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("delta-spark"))')"
DELTA_PACKAGE="io.delta:delta-spark_2.13:$DELTA_VERSION"

# Delta's jars. A local run resolves them with Ivy once per Delta version, records the jar files
# Ivy chose (build/delta-jars-<version>.txt) and from then on passes those files (--jars): no
# resolution, and no wait on an unreachable second repository, at every launch. Any other master
# gets --packages, as a cluster always has; a recorded file that has gone is resolved again.
deps=(--packages "$DELTA_PACKAGE")
case "${master:-local}" in
  local*)
    JARS_FILE="$ROOT/build/delta-jars-$DELTA_VERSION.txt"
    recorded_jars_present() {
      [ -s "$JARS_FILE" ] || return 1
      local jar; IFS=, read -ra jars < "$JARS_FILE"
      for jar in "${jars[@]}"; do [ -f "$jar" ] || return 1; done
    }
    if ! recorded_jars_present; then
      cat > "$SCRATCH/resolved-jars.py" <<'PYEOF'
from pyspark import SparkContext
SparkContext._ensure_initialized()  # the gateway spark-submit started; no SparkContext
print("RESOLVED_JARS=" + (SparkContext._jvm.System.getProperty("spark.jars") or ""))
PYEOF
      resolved="$("$SUBMIT" --master "local[1]" --packages "$DELTA_PACKAGE" "$SCRATCH/resolved-jars.py" \
                  2>"$SCRATCH/resolved-jars.log" | sed -n 's#^RESOLVED_JARS=##p' | sed 's#file:/*#/#g')" || true
      if [ -n "$resolved" ]; then
        printf '%s\n' "$resolved" > "$SCRATCH/delta-jars.txt" && mv -f "$SCRATCH/delta-jars.txt" "$JARS_FILE"
      else
        cp "$SCRATCH/resolved-jars.log" "$ROOT/build/resolved-jars.log" 2>/dev/null || true  # why it failed
      fi
    fi
    if recorded_jars_present; then deps=(--jars "$(cat "$JARS_FILE")"); fi ;;
esac
ship="$(ls "$conf_dir"/*.yaml | tr '\n' ',')$conf_dir/log4j2.properties"
for f in "${files[@]+"${files[@]}"}"; do ship="$ship,$f"; done

# exec replaces the shell, so its EXIT trap would never run: the scratch folder goes now.
rm -rf "$SCRATCH"; trap - EXIT
exec "$SUBMIT" \
  --master "${master:-local[*]}" \
  --name "segmentation-$JOB" \
  "${deps[@]}" \
  --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
  --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
  --conf spark.ui.showConsoleProgress=false \
  --conf spark.sql.execution.arrow.pyspark.enabled=true \
  --conf spark.sql.session.timeZone=UTC \
  --conf "spark.pyspark.python=$PYSPARK_PYTHON" \
  --conf spark.executor.extraJavaOptions=-Dlog4j2.configurationFile=log4j2.properties \
  --driver-java-options "-Dlog4j2.configurationFile=file:$conf_dir/log4j2.properties" \
  --py-files "$ZIP" \
  --files "$ship" \
  "${spark_args[@]+"${spark_args[@]}"}" \
  "$ROOT/jobs/$JOB.py" --conf-dir "$conf_dir" "${job_args[@]+"${job_args[@]}"}"
