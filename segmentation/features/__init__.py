"""The features stage: the data contract, cleaning and imputation, the engineered features, and the stage that writes `features` and `quarantine`.

The contract's rules (`rules`) and the features (`definitions`) are written once as expressions
(`expr`): Spark evaluates them for the nightly job (`expr_spark`), numpy for real-time scoring
(`expr_numpy`, no pyspark).
"""
