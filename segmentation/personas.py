"""Readable segment names from each segment's profile and the forest's feature importances."""

from __future__ import annotations

import numpy as np
import pandas as pd

_LABELS = {
    "BALANCE": "balance",
    "BALANCE_FREQUENCY": "balance upkeep",
    "PURCHASES": "purchases",
    "ONEOFF_PURCHASES": "one-off purchases",
    "INSTALLMENTS_PURCHASES": "instalment purchases",
    "CASH_ADVANCE": "cash advance",
    "PURCHASES_FREQUENCY": "purchase frequency",
    "ONEOFF_PURCHASES_FREQUENCY": "one-off frequency",
    "PURCHASES_INSTALLMENTS_FREQUENCY": "instalment frequency",
    "CASH_ADVANCE_FREQUENCY": "cash-advance frequency",
    "CASH_ADVANCE_TRX": "cash-advance count",
    "PURCHASES_TRX": "purchase count",
    "CREDIT_LIMIT": "credit limit",
    "PAYMENTS": "payments",
    "MINIMUM_PAYMENTS": "minimum payments",
    "PRC_FULL_PAYMENT": "full-payment share",
    "TENURE": "tenure",
    "LIMIT_USAGE": "credit utilisation",
    "PAYMENT_MINPAY_RATIO": "payment-to-minimum ratio",
    "PURCHASE_both": "mixed buyers",
    "PURCHASE_installments": "instalment buyers",
    "PURCHASE_none": "non-buyers",
    "PURCHASE_one_off": "one-off buyers",
    "MONTHLY_AVG_PURCHASES": "monthly spend",
    "MONTHLY_CASH_ADVANCE": "monthly cash advance",
}


# Columns that describe one behaviour; a name mentions each behaviour once.
_FAMILIES = {
    "purchases": ["PURCHASES", "MONTHLY_AVG_PURCHASES", "PURCHASES_TRX", "PURCHASES_FREQUENCY", "PURCHASE_none"],
    "one_off": ["ONEOFF_PURCHASES", "ONEOFF_PURCHASES_FREQUENCY", "PURCHASE_one_off"],
    "instalments": ["INSTALLMENTS_PURCHASES", "PURCHASES_INSTALLMENTS_FREQUENCY", "PURCHASE_installments"],
    "cash": ["CASH_ADVANCE", "MONTHLY_CASH_ADVANCE", "CASH_ADVANCE_TRX", "CASH_ADVANCE_FREQUENCY"],
    "balance": ["BALANCE", "BALANCE_FREQUENCY", "LIMIT_USAGE"],
    "payments": ["PAYMENTS", "MINIMUM_PAYMENTS", "PAYMENT_MINPAY_RATIO", "PRC_FULL_PAYMENT"],
}
_FAMILY_OF = {column: family for family, columns in _FAMILIES.items() for column in columns}


def segment_profiles(scaled: np.ndarray, labels: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Mean of each scaled feature per segment: how many standard units from the whole sample."""
    frame = pd.DataFrame(scaled, columns=columns)
    frame["segment"] = labels
    return frame.groupby("segment").mean()


def name_segments(profiles: pd.DataFrame, importances: np.ndarray, top: int = 2) -> dict[int, str]:
    """Each segment is named by its strongest traits, weighting distance by importance."""
    weights = pd.Series(importances, index=profiles.columns)
    names: dict[int, str] = {}
    for segment, row in profiles.iterrows():
        strength = (row.abs() * weights).sort_values(ascending=False)
        parts: list[str] = []
        used: set[str] = set()
        for column in strength.index:
            family = _FAMILY_OF.get(column, column)
            if family in used:
                continue
            used.add(family)
            if len(parts) == top:
                break
            label = _LABELS.get(column, column.lower())
            if column.startswith("PURCHASE_") and row[column] > 0:
                parts.append(label)
            elif column.startswith("PURCHASE_"):
                parts.append(f"few {label}")
            else:
                parts.append(f"{'high' if row[column] > 0 else 'low'} {label}")
        text = ", ".join(parts)
        names[int(segment)] = text[:1].upper() + text[1:]
    # Two segments can share their top traits; the id keeps each name unique.
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    return {s: (f"{n} ({s})" if seen[n] > 1 else n) for s, n in names.items()}
