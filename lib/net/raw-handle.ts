// The libuv handle under a net.Socket or a net.Server. forkserver sends these
// raw handles over the IPC channel rather than the wrappers: Node rewraps and
// starts reading a sent net.Socket at once (see child.ts), and keeps a sent
// net.Server listening in the sender (see prefork.ts). `send` takes raw
// handles, though Node's types list only the wrappers.
import type { SendHandle } from 'node:child_process'

export interface RawHandle {
  close(): void
}

export const rawHandle = (owner: object): RawHandle => (owner as { _handle: RawHandle })._handle

/** The descriptor under a raw handle (a socket's or a listener's); null once it is closed, or for none. */
export const handleFd = (handle: object | null): number | null => {
  const fd = (handle as { fd?: unknown } | null)?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : null
}

export const sendable = (handle: object): SendHandle => handle as SendHandle
