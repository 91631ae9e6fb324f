#!/usr/bin/env python3
"""TCP relays between one canary replica and the etcd members, for bench/chaos.sh.

    chaos_relay.py LISTEN_PORT:TARGET_PORT [...]     (all on 127.0.0.1)

Bytes pass through until SIGUSR1 cuts every relay of this process: from then
on bytes are read and dropped both ways and connections stay open (a
partition, noticed only through timeouts); new connections are accepted and
never forwarded. SIGUSR2 heals: new connections pass again. A connection that
lost bytes to a cut stays cut (its stream has a gap no endpoint could
resume); its endpoints give it up on their own timeouts and open new ones.
"""

import asyncio
import signal
import sys

CUT = False


class Link:
    """One relayed connection: once it has dropped a byte it forwards no more."""

    def __init__(self):
        self.cut = False


async def pump(reader, writer, link, closers):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if CUT or link.cut:
                link.cut = True
                continue
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    # The end of a cut stream is dropped too: the other side is never told.
    if not link.cut:
        for w in closers:
            w.close()


async def drain(reader):
    try:
        while await reader.read(65536):
            pass
    except (ConnectionError, OSError):
        pass


def relay(target):
    async def handle(creader, cwriter):
        link = Link()
        if CUT:
            link.cut = True
            await drain(creader)
            return
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cwriter.close()
            return
        closers = (cwriter, uwriter)
        await asyncio.gather(
            pump(creader, uwriter, link, closers), pump(ureader, cwriter, link, closers)
        )

    return handle


async def main(pairs):
    def cut():
        global CUT
        CUT = True

    def heal():
        global CUT
        CUT = False

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, cut)
    loop.add_signal_handler(signal.SIGUSR2, heal)
    servers = []
    for pair in pairs:
        listen, target = (int(p) for p in pair.split(":"))
        servers.append(await asyncio.start_server(relay(target), "127.0.0.1", listen, reuse_address=True))
    print("relays ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
