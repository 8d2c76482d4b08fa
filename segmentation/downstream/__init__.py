"""What campaign teams read after a night is scored: segment shares, `segments_current`, migrations and drift."""
