"""The train stage: the driver-side sample, clustering comparison, forest, stable ids, personas, profiles and drivers."""
