"""Twisted TCP side: LegacyActor servers and TronConnection clients."""
