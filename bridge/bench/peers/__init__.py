"""Peer programs for the relay benchmark (``python -m bridge.bench.peers.<name>``).

They use only the public API of sdss-clu (a test/bench extra, not a runtime dependency:
each program imports it lazily and exits with status 2 and a clear message if it is
missing) or of this package. Conventions: 127.0.0.1 only; one ``READY <name> <address>``
line on stdout once serving; SIGTERM/SIGINT stop them with status 0.

* :mod:`.clu_camera`: a clu ``AMQPActor`` with ``ping`` (built in) and ``spam N``;
* :mod:`.clu_shutter`: a clu ``LegacyActor`` with the same two commands;
* :mod:`.our_shutter`: the same legacy actor written with :mod:`bridge.legacy.actor`;
* :mod:`.clu_client`: a clu ``AMQPClient`` that runs timing requests read as JSON lines
  on stdin and answers each with one JSON line on stdout.
"""
