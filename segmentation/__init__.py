"""Behavioural segmentation of credit-card customers: Spark features, sklearn models, Delta tables."""

__version__ = "0.1.0"
