"""The score stage: the forest broadcast into an Arrow UDF writes `segments`, then the downstream tables refresh."""
