"""An audience's holdout: a function of the audience's salt and the customer's id alone, so a
customer keeps its group across nights, retrains and re-runs, and is never rebalanced.

The position of a customer is the first 8 hex digits of sha2(salt || ':' || CUST_ID, 256) read
as an integer over 2^32, uniform on [0, 1); below `holdout_share` is holdout. The same function
in Spark (for the nightly tables) and in Python (for a CRM or a notebook), tested equal.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

from segmentation.core.columns import ID_COLUMN

TREATMENT, HOLDOUT = "treatment", "holdout"
_SCALE = float(2**32)


def position(salt: str, cust_id: str) -> float:
    """Python: where `cust_id` falls in [0, 1) for `salt`."""
    digest = hashlib.sha256(f"{salt}:{cust_id}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / _SCALE


def group(salt: str, holdout_share: float, cust_id: str) -> str:
    """Python: `holdout` or `treatment`."""
    return HOLDOUT if position(salt, cust_id) < holdout_share else TREATMENT


def position_column(salt: str, id_column: str = ID_COLUMN) -> Column:
    """Spark: `position` of each row's id (sha2 of the UTF-8 bytes, as hashlib's)."""
    digest = F.sha2(F.concat(F.lit(f"{salt}:"), F.col(id_column)), 256)
    return F.conv(F.substring(digest, 1, 8), 16, 10).cast("long") / F.lit(_SCALE)


def group_column(salt: str, holdout_share: float, id_column: str = ID_COLUMN) -> Column:
    """Spark: `group` of each row's id."""
    return F.when(position_column(salt, id_column) < F.lit(holdout_share), HOLDOUT).otherwise(TREATMENT)
