"""Tron nub (ours, for tests): commander listener bound to a loopback address.

Speaks tron's ASCII commander protocol exactly like tron's stock ``client`` nub
(``<program.user> <mid> <actor> <command>`` in; every reply of every actor out as
``<program.user> <mid> <actor> <code> <keywords>``), but binds the host/port from the
``commanderListener`` entry of the hub's ``local.json`` instead of ``0.0.0.0:6093`` and
does not sleep one second per accepted connection. When listening it prints
``READY tron HOST:PORT pid=N`` (tests/peers/run_tron_hub.py puts it last in the boot
list, so the line means "booted and accepting commanders").
"""

import os
import sys

from tron import IO, Misc, g, hub
from tron.Hub.Command.Decoders.ASCIICmdDecoder import ASCIICmdDecoder
from tron.Hub.Nub.Commanders import StdinNub
from tron.Hub.Reply.Encoders.ASCIIReplyEncoder import ASCIIReplyEncoder

name = 'loopclient'


class LoopbackListener(object):
    """The interface of tron's SocketListener, with an explicit bind address."""

    def __init__(self, poller, host, port, callback):
        self.name = name
        self.ID = name
        self.port = port
        self.callback = callback
        self.listener = IO.PollAccept(poller, host, port, callback=self.acceptOne)

    def shutdown(self, notifyHub=True, why=''):
        if notifyHub:
            hub.dropNub(self)
        else:
            self.listener.shutdown()
            del self.listener

    def acceptOne(self, f, addr):
        f.setblocking(0)
        self.callback(f, f, addr)


def acceptCommander(in_f, out_f, addr=None):
    nubID = g.nubIDs.gimme()
    decoder = ASCIICmdDecoder(needCID=True, needMID=True, EOL='\n', hackEOL=True,
                              name=name, debug=1)
    encoder = ASCIIReplyEncoder(EOL='\n', simple=True, debug=1, CIDfirst=True)
    nub = StdinNub(g.poller, in_f, out_f, name='%s.v%d' % (name, nubID),
                   encoder=encoder, decoder=decoder, debug=1)
    nub.taster.addToFilter(('*',), (), ('*',))
    hub.addCommander(nub)


def start(poller):
    conf = Misc.cfg.get(g.location, 'commanderListener', doFlush=True)
    host = conf.get('host', '127.0.0.1')
    port = int(conf['port'])
    stop()
    hub.addAcceptor(LoopbackListener(poller, host, port, acceptCommander))
    Misc.log(name, 'listening on %s:%d' % (host, port))
    print('READY tron %s:%d pid=%d' % (host, port, os.getpid()), flush=True)
    sys.stdout.flush()


def stop():
    listener = hub.findAcceptor(name)
    if listener:
        hub.dropAcceptor(listener)
        del listener
