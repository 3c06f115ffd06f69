"""Tron nub (ours, for tests): tron's authenticated ``TUI`` listener on a loopback address.

Builds every connection exactly like tron's stock ``TUI`` nub (``AuthStdinNub`` with
``ASCIICmdDecoder(needCID=False, EOL='\\r\\n')``, ``ASCIIReplyEncoder(EOL='\\r',
simple=True, CIDfirst=True)``, ``needsAuth``, ``isUser``, the peer's FQDN), but binds
the host/port of the ``authListener`` entry of the hub's ``local.json`` instead of
``0.0.0.0:9877``. Passwords come from ``~/.tronpass.cfg`` as with the stock nub
(tests/support/tron_hub.py points ``HOME`` at the state dir).
"""

import socket

from tron import Misc, g, hub
from tron.Hub.Command.Decoders.ASCIICmdDecoder import ASCIICmdDecoder
from tron.Hub.Nub.Commanders import AuthStdinNub
from tron.Hub.Reply.Encoders.ASCIIReplyEncoder import ASCIIReplyEncoder

from tron.Nubs.loopclient import LoopbackListener

name = 'loopauth'


def acceptTUI(in_f, out_f, addr=None):
    nubID = g.nubIDs.gimme()
    otherIP, otherPort = in_f.getpeername()
    try:
        otherFQDN = socket.getfqdn(otherIP)
    except Exception:
        otherFQDN = 'unknown'
    decoder = ASCIICmdDecoder(needCID=False, EOL='\r\n', debug=1)
    encoder = ASCIIReplyEncoder(EOL='\r', simple=True, debug=1, CIDfirst=True)
    nub = AuthStdinNub(g.poller, in_f, out_f, name='TUI_%d' % (nubID,), encoder=encoder,
                       decoder=decoder, debug=1, type='TUI', needsAuth=True, isUser=True,
                       otherIP=otherIP, otherFQDN=otherFQDN)
    nub.taster.addToFilter(('*',), (), ('*',))
    hub.addCommander(nub)


def start(poller):
    conf = Misc.cfg.get(g.location, 'authListener', doFlush=True)
    host = conf.get('host', '127.0.0.1')
    port = int(conf['port'])
    stop()
    listener = LoopbackListener(poller, host, port, acceptTUI)
    listener.name = listener.ID = name
    hub.addAcceptor(listener)
    Misc.log(name, 'listening on %s:%d' % (host, port))


def stop():
    listener = hub.findAcceptor(name)
    if listener:
        hub.dropAcceptor(listener)
        del listener
