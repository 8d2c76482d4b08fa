"""Real-time scoring without Spark: the numpy contract and features, the MLflow pyfunc and its models-from-code entry file."""
