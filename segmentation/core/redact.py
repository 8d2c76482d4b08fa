"""Secrets kept out of everything the product records or logs: MLflow params, errors, runs, logs.

A value is a secret by its key's name (`secret`, `password`, `token`, `credential`, and an
account, access or private *key*), wherever the key sits in a dotted path: Spark's
`fs.azure.account.key.<account>.dfs.core.windows.net` ends in `net`, not in `key`. A URI's
user-info (`scheme://user:password@host`; on Azure's `abfss://container@account...` the
container, a name, stays) and secret query parameters (a SAS `sig=`, `token=`) are removed from
any text. Redaction is of what is recorded, never of what the job uses.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

MASK = "***"

# "key" alone is not a secret (`spark.sql.shuffle.partitions` has none, but `model_name`,
# `primary_key`, a partition key, a sort key are ordinary settings); an account, access, private,
# API or SAS key is one: Azure's `fs.azure.account.key.*`, S3A's `fs.s3a.access.key`, GCS's
# `...private.key`. Separators: `.`, `_`, `-` or none (`accountKey`, `access_key`).
_SECRET_KEY = re.compile(
    r"secret|passw(?:or)?d|token|credential|(?:account|access|private|api|sas)[._-]?key", re.IGNORECASE)
# scheme://user-info@ : the user-info ends at the first @ before any /, ? or # of the authority.
_USER_INFO = re.compile(r"(?P<scheme>\b(?P<name>[A-Za-z][A-Za-z0-9+.-]*)://)(?P<info>[^/?#@\s]*)@")
# Azure's storage URIs put the container there (abfss://container@account.dfs.core.windows.net/):
# a name, not a credential, kept so a logged path still says where.
_CONTAINER_SCHEMES = {"abfs", "abfss", "wasb", "wasbs"}
_SECRET_QUERY = re.compile(r"(?P<name>[?&](?:[A-Za-z0-9_.-]*(?:secret|passw(?:or)?d|token|credential|key)"
                           r"[A-Za-z0-9_.-]*|sig)=)[^&#\s]*", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether a (dotted) key names a secret."""
    return bool(_SECRET_KEY.search(str(key)))


def text(value: str) -> str:
    """`value` without any URI's user-info or secret query parameters."""
    if "://" not in value and "=" not in value:
        return value
    return _SECRET_QUERY.sub(lambda m: m.group("name") + MASK, _USER_INFO.sub(_without_user_info, value))


def _without_user_info(match: re.Match) -> str:
    if match.group("name").lower() in _CONTAINER_SCHEMES and ":" not in match.group("info"):
        return match.group(0)
    return match.group("scheme")


def value(key: str, item: Any) -> Any:
    """What may be recorded of `item` under `key`: the mask for a secret's, text redacted."""
    if is_secret_key(key) and item not in (None, ""):
        return MASK
    return text(item) if isinstance(item, str) else item


def flat(values: Mapping[str, Any]) -> dict[str, Any]:
    """A flat {dotted key: value} mapping (MLflow params, Spark settings) with secrets masked."""
    return {key: value(key, item) for key, item in values.items()}


def tree(values: Any, path: str = "") -> Any:
    """A nested config (`Config.model_dump()`) with secrets masked at any depth."""
    if isinstance(values, Mapping):
        return {k: (MASK if is_secret_key(f"{path}{k}") and v not in (None, "", {}) and not isinstance(v, Mapping)
                    else tree(v, f"{path}{k}.")) for k, v in values.items()}
    if isinstance(values, list):
        return [tree(v, path) for v in values]
    return text(values) if isinstance(values, str) else values
