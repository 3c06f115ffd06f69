"""Transport-agnostic core: routing table, command tracking and id mapping."""
