"""Delta Lake I/O and the runs table: every read and write of a product table goes through here."""
