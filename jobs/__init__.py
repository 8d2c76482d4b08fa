"""Thin entry points: parse arguments, load config, get the session, call the library."""
