#!/usr/bin/env python3
"""Echo, one forked process per connection, with the standard library's
socketserver.ForkingTCPServer.

    python3 bench/peers/python-forking.py PORT     (0 = any free port)

With FORKSERVER_FORK_TIMES set (make bench's cost table), the parent writes
`fork-time call=NS` on stderr after each os.fork(): the whole call (its
at-fork handlers and fork(2)), which Python does not split.
"""
import os
import socketserver
import sys
import time


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True
    # The default backlog of 5 overflows at concurrency 32 and clients then
    # wait for SYN retransmits: that would measure the backlog, not the fork.
    request_queue_size = 128
    # As forkserver's --max-children 64 in the bench (the default is 40).
    max_children = 64


def time_forks():
    """os.fork, as socketserver calls it, timed in the parent."""
    untimed = os.fork

    def fork():
        t0 = time.perf_counter_ns()
        pid = untimed()
        if pid != 0:
            os.write(2, f'fork-time call={time.perf_counter_ns() - t0}\n'.encode())
        return pid

    os.fork = fork


def main():
    if os.environ.get('FORKSERVER_FORK_TIMES'):
        time_forks()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with Server(('127.0.0.1', port), Echo) as server:
        print(f'listening on 127.0.0.1:{server.server_address[1]}', file=sys.stderr, flush=True)
        server.serve_forever()


if __name__ == '__main__':
    main()
