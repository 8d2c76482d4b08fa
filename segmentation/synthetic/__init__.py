"""Generated customers shaped like the bundled file, for scale benchmarks and tests."""
