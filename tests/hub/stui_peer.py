#!/usr/bin/env python
"""STUI's keyword machinery without its windows, for tests: log in, refresh, probe, report.

Usage: python stui_peer.py --port P --program PROG --password PW --username U
       --dictionaries DIR --actors hub,cmds,perms,... [--timeout S]

The dispatcher and models are opscore's, built as STUI's ``TUI/Models/TUIModel.py``
builds them: ``CmdKeyVarDispatcher(name="stui", includeName=False,
callKeyVarsOnDisconnect=True)`` and one ``opscore.actor.model.Model`` per actor (their
refresh: ``keys getFor=<actor>`` in batches of 20 and each ``refreshCmd``; ``keys_<actor>``
replies set the actor's keyVars). ``DIR`` holds an ``actorkeys`` package with the
dictionaries. The connection is :class:`HubLink`, a stand-in for RO's ``HubConnection``
(whose Python 3 port in opscore cannot write a line: it adds str and bytes): it speaks
the same login (``1 auth knockKnock``; ``1 auth login program="P" password="<sha1(nonce +
password)>" username="U" type='STUI' version='3.0' platform='Linux'``) and offers the
methods the dispatcher uses. After the refresh it sends STUI's liveness probe
(``hub version``, 5 s limit, TUI/BackgroundTasks.py) and a ``msg``, then prints one JSON
line: the dispatcher's log (STUI's: "Refresh command ... failed", "No refresh data for
..."), the commands' outcome and the keyVars' values; exit status 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--program", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--dictionaries", required=True)
    ap.add_argument("--actors", required=True)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    sys.path.insert(0, args.dictionaries)

    from twisted.internet import reactor
    from twisted.internet.protocol import ClientFactory, Protocol

    import opscore.actor.cmdkeydispatcher as cmdkeydispatcher
    import opscore.actor.keyvar as keyvar
    import opscore.actor.model as model

    class HubLink(Protocol):
        """The parts of RO.Comm.HubConnection the dispatcher uses, and its login."""

        def __init__(self) -> None:
            self.cmdr: str | None = None
            self.isConnected = False
            self.state = "Connecting"
            self.buffer = b""
            self.read_callbacks: list = []
            self.state_callbacks: list = []

        def addReadCallback(self, callback) -> None:
            self.read_callbacks.append(callback)

        def addStateCallback(self, callback) -> None:
            self.state_callbacks.append(callback)

        def writeLine(self, line: str) -> None:
            self.transport.write(line.encode() + b"\r\n")

        def disconnect(self, *args) -> None:
            if self.transport is not None:
                self.transport.loseConnection()

        def connectionMade(self) -> None:
            self.set_state("Authorizing")
            self.writeLine("1 auth knockKnock")

        def dataReceived(self, data: bytes) -> None:
            self.buffer += data
            *lines, self.buffer = re.split(rb"\r\n|\r|\n", self.buffer)
            for line in lines:
                if line:
                    self.line_received(line.decode())

        def line_received(self, line: str) -> None:
            if self.isConnected:
                for callback in self.read_callbacks:
                    callback(self, line.encode())  # as RO's sockets: the bytes read
                return
            nonce = re.search(r'nonce="([^"]+)"', line)
            if nonce and " auth : " in line:
                digest = hashlib.sha1((nonce.group(1) + args.password).encode()).hexdigest()
                self.writeLine(f'1 auth login program="{args.program}" password="{digest}" '
                               f'username="{args.username}" '
                               + "type=%r version=%r platform=%r" % ("STUI", "3.0", "Linux"))
                return
            cmdr = re.search(r'cmdrID="([^"]+)"', line)
            if cmdr and " auth : " in line:
                self.cmdr = cmdr.group(1)
                self.isConnected = True
                self.set_state("Connected")
            elif " auth f " in line:
                result["error"] = f"login failed: {line}"
                self.disconnect()

        def connectionLost(self, reason=None) -> None:
            self.isConnected = False
            self.set_state("Disconnected")

        def set_state(self, state: str) -> None:
            self.state = state
            for callback in self.state_callbacks:
                callback(self)

    log: list[str] = []
    result: dict = {"log": log}

    def log_func(msg, severity=None, actor=None, cmdr=None, **_kw):
        log.append(str(msg))

    connection = HubLink()
    dispatcher = cmdkeydispatcher.CmdKeyVarDispatcher(
        name="stui", connection=connection, includeName=False,
        callKeyVarsOnDisconnect=True, logFunc=log_func)
    model.Model.setDispatcher(dispatcher)
    models = {actor: model.Model(actor) for actor in args.actors.split(",")}

    def finish(error: str | None = None) -> None:
        if error:
            result["error"] = error
        for actor, m in models.items():
            values = {}
            for name, var in m.keyVarDict.items():
                if var.isCurrent and var.valueList:
                    values[name] = [None if v is None else str(v) for v in var.valueList]
            result.setdefault("values", {})[actor] = values
        result["cmdr"] = connection.cmdr
        print(json.dumps(result), flush=True)
        connection.disconnect()
        reactor.callLater(0.2, reactor.stop)

    def probe() -> None:
        """STUI's liveness probe, then a message."""
        outcomes: dict[str, str] = {}
        result["commands"] = outcomes

        def done(name, cmdVar):
            if cmdVar.isDone:
                outcomes[name] = "failed" if cmdVar.didFail else "done"
                if len(outcomes) == 2:
                    finish()

        dispatcher.executeCmd(keyvar.CmdVar(actor="hub", cmdStr="version", timeLim=5.0,
                                            callFunc=lambda c: done("hub version", c)))
        dispatcher.executeCmd(keyvar.CmdVar(actor="msg", cmdStr="hello from STUI",
                                            timeLim=5.0, callFunc=lambda c: done("msg", c)))

    def wait_for_refresh() -> None:
        if dispatcher._allRefreshCmdsSent and not dispatcher._runningRefreshCmdSet:
            result["refreshCommands"] = sorted(" ".join(info) for info in
                                               dispatcher.refreshCmdDict)
            probe()
        else:
            reactor.callLater(0.05, wait_for_refresh)

    def state_changed(conn) -> None:
        result.setdefault("states", []).append(conn.state)
        if conn.isConnected:
            reactor.callLater(0.05, wait_for_refresh)

    connection.addStateCallback(state_changed)
    factory = ClientFactory()
    factory.buildProtocol = lambda _addr: connection
    reactor.connectTCP("127.0.0.1", args.port, factory)
    reactor.callLater(args.timeout, finish, "timed out")
    reactor.run()


if __name__ == "__main__":
    main()
