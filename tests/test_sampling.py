from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from segmentation.train.sampling import driver_sample

SCHEMA = StructType([StructField("CUST_ID", StringType()), StructField("X", DoubleType())])


def _frame(spark, n, partitions):
    rows = [(f"C{i:05d}", float(i)) for i in range(n)]
    return spark.createDataFrame(rows, SCHEMA).repartition(partitions)


def test_sample_is_capped_sorted_and_reproducible(spark):
    a = driver_sample(_frame(spark, 500, 3), ["X"], max_rows=50, seed=7)
    b = driver_sample(_frame(spark, 500, 5), ["X"], max_rows=50, seed=7)
    assert len(a) == 50
    assert list(a.CUST_ID) == sorted(a.CUST_ID)
    assert list(a.CUST_ID) == list(b.CUST_ID)  # same rows whatever the partitioning


def test_seed_changes_the_sample_and_small_tables_fit_whole(spark):
    a = driver_sample(_frame(spark, 500, 2), ["X"], max_rows=50, seed=7)
    c = driver_sample(_frame(spark, 500, 2), ["X"], max_rows=50, seed=8)
    assert set(a.CUST_ID) != set(c.CUST_ID)
    whole = driver_sample(_frame(spark, 40, 2), ["X"], max_rows=50, seed=7)
    assert list(whole.CUST_ID) == [f"C{i:05d}" for i in range(40)]
