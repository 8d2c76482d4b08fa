"""The fixed-cost floor: one spark-submit that reads the bundled CSV and writes it to one Delta table.

Launched by `benchmarks.fixed_costs` with the Spark, Delta jars and settings `spark-submit.sh`
gives a job, so what a later night costs beyond this is the product's own work.

    spark-submit ... benchmarks/floor_job.py CSV TABLE
"""

import sys

from pyspark.sql import SparkSession


def main(source: str, target: str) -> int:
    spark = SparkSession.builder.getOrCreate()
    # Every column as text, as the job's CSV reader starts: no type inference pass over the file.
    rows = spark.read.csv(source, header=True)
    rows.write.format("delta").mode("overwrite").save(target)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
