"""The features stage: the data contract, cleaning and imputation, the engineered features, and the stage that writes `features` and `quarantine`."""
