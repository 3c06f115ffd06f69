"""The `bridge` command line."""
