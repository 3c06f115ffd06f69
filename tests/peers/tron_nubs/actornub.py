"""Tron nub helpers (ours, for tests): a SocketActorNub for any actor in ``local.json``.

tests/support/tron_hub.py generates one tiny module ``<actor>.py`` per registered actor
(tron imports nubs as ``tron.Nubs.<name>``); each calls :func:`start_actor_nub`, which
reads the ``actors.<name>`` entry of ``local.json`` at start time (so an actor added while
the hub runs is picked up by ``hub startNubs <name>``) and builds the nub with the
options tron's own SDSS-V nubs use for clu actors: ``ASCIICmdEncoder(sendCommander=True,
useCID=False)``, ``ASCIIReplyDecoder(cidFirst=True)``, ``grabCID=True``, ``needsAuth``.

Entry keys: ``host``, ``port``, ``midFirst`` (reply header ``<mid> <cid>`` instead of
``<cid> <mid>``), ``initCmds``, ``sendCommander``, ``grabCID``, ``debug``.
"""

import os

from tron import Misc, g, hub
from tron.Hub.Command.Encoders.ASCIICmdEncoder import ASCIICmdEncoder
from tron.Hub.Nub.SocketActorNub import SocketActorNub
from tron.Hub.Reply.Decoders.ASCIIReplyDecoder import ASCIIReplyDecoder

SAFE_CMDS = ('ping', 'status', 'version')


def start_actor_nub(poller, name):
    conf = Misc.cfg.get(g.location, 'actors', doFlush=True)[name]
    stop_actor_nub(name)
    cid_first = not conf.get('midFirst', False)
    nub = SocketActorNub(
        poller,
        conf['host'],
        int(conf['port']),
        name=name,
        encoder=ASCIICmdEncoder(sendCommander=bool(conf.get('sendCommander', True)),
                                useCID=False, debug=1),
        # tron's decoder reads the option as ``CIDfirst``; its SDSS-V nubs pass
        # ``cidFirst`` (ignored, default True). Pass both so midFirst really works.
        decoder=ASCIIReplyDecoder(cidFirst=cid_first, CIDfirst=cid_first, debug=1),
        grabCID=bool(conf.get('grabCID', True)),
        initCmds=tuple(conf.get('initCmds', SAFE_CMDS)),
        safeCmds=r'^\s*(%s)\s*$' % '|'.join(SAFE_CMDS),
        needsAuth=True,
        logDir=os.path.join(g.logDir, name),
        debug=int(conf.get('debug', 1)),
    )
    hub.addActor(nub)


def stop_actor_nub(name):
    nub = hub.findActor(name)
    if nub:
        hub.dropActor(nub)
