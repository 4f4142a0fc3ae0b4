#!/usr/bin/env python3
"""Emulated network delay for bench/rtt: a TCP relay that holds every chunk for a fixed one-way
delay in each direction, so a connection through it sees RTT = 2 x delay on top of loopback.

Used because this machine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set), so
`tc qdisc ... netem delay` is not available. A relay delays data, not TCP's own segments: the
handshake of the relay's client side is not delayed (its connect to the target is, once), and
there is no loss or bandwidth limit. SSH's round trips, the thing measured, all pay the delay.

    delay_proxy.py ONE_WAY_MS LISTEN_ADDR:PORT=TARGET_ADDR:PORT [...]

Loopback addresses only (the network-safety rule): it refuses anything else. Prints "ready"
on stdout once every listener is bound. Stops on SIGTERM.
"""

import asyncio
import ipaddress
import signal
import sys


def loopback(addr):
    if not ipaddress.ip_address(addr).is_loopback:
        sys.exit(f"delay_proxy: {addr} is not a loopback address")
    return addr


async def pipe(reader, writer, delay):
    """Copies reader to writer, each chunk delivered `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
    except OSError:
        queue.put_nowait((loop.time() + delay, None))
    await task


async def relay(client_r, client_w, target, delay):
    try:
        await asyncio.sleep(delay)  # the SYN's way there
        target_r, target_w = await asyncio.open_connection(*target)
        await asyncio.sleep(delay)  # and the SYN-ACK's way back
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, target_w, delay), pipe(target_r, client_w, delay))
    for w in (client_w, target_w):
        w.close()


async def main():
    delay = float(sys.argv[1]) / 1000.0
    servers = []
    for spec in sys.argv[2:]:
        listen, target = spec.split("=")
        lh, lp = listen.rsplit(":", 1)
        th, tp = target.rsplit(":", 1)
        dest = (loopback(th), int(tp))
        servers.append(
            await asyncio.start_server(
                lambda r, w, dest=dest: relay(r, w, dest, delay), loopback(lh), int(lp), backlog=1024
            )
        )
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


asyncio.run(main())
