// Has the peer of a queued connection gone away?
//
// A paused socket is never read, so Node cannot see its peer leave: no 'end',
// no 'error'. Reading would steal bytes that belong to the child. The kernel
// knows, though, and Linux shows it in /proc/net/tcp{,6}, as `ss` does:
//   - a reset connection is no longer listed;
//   - a peer that closed sends a FIN: CLOSE_WAIT. With nothing unread it has
//     left; with bytes unread it may have half-closed and still want an answer.
// Elsewhere (no /proc) nobody is ever seen to leave, and a queued client that
// gave up is served, and finds out, when its turn comes.
//
// That table lists every TCP socket of the host, so reading it costs what the
// host holds, not what the queue holds (44% of a core every 250 ms with 14,000
// sockets). Where the native addon is built, peerState() asks the one socket
// instead: a recv peek, which reads nothing (lib/native/fork.c).
import type { Socket } from 'node:net'
import { endianness } from 'node:os'
import { readFile } from 'node:fs/promises'
import { addressKey } from './cidr.js'
import { handleFd, rawHandle } from './raw-handle.js'
import type { Addon } from '../native/addon.js'

export interface Endpoints {
  readonly localAddress: string
  readonly localPort: number
  readonly remoteAddress: string
  readonly remotePort: number
}

const CLOSE_WAIT = '08'

interface Kernel {
  readonly state: string
  readonly unread: number
}

const key = (local: string, localPort: number, remote: string, remotePort: number): string =>
  `${addressKey(local)}/${localPort}/${addressKey(remote)}/${remotePort}`

/** `0100007F:1B58` → ['127.0.0.1', 7000]; the address is in host byte order, by 32-bit word. */
export const decodeEndpoint = (text: string, little = endianness() === 'LE'): [string, number] => {
  const [hex = '', port = ''] = text.split(':')
  const bytes: number[] = []
  for (let word = 0; word < hex.length; word += 8) {
    const chunk = [...Buffer.from(hex.slice(word, word + 8), 'hex')]
    bytes.push(...(little ? chunk.reverse() : chunk))
  }
  const mapped = bytes.length === 16 && bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  const v4 = bytes.length === 4 ? bytes : mapped ? bytes.slice(12) : null
  if (v4 !== null) return [v4.join('.'), parseInt(port, 16)]
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16))
  return [groups.join(':'), parseInt(port, 16)]
}

/** Parses the text of /proc/net/tcp or tcp6 into connection → kernel state. */
export const parseProcNetTcp = (text: string, into = new Map<string, Kernel>()): Map<string, Kernel> => {
  for (const line of text.split('\n').slice(1)) {
    const [, local, remote, state, queues] = line.trim().split(/\s+/)
    if (!local || !remote || !state || !queues) continue
    const [localAddress, localPort] = decodeEndpoint(local)
    const [remoteAddress, remotePort] = decodeEndpoint(remote)
    into.set(key(localAddress, localPort, remoteAddress, remotePort), {
      state,
      unread: parseInt(queues.split(':')[1] ?? '0', 16),
    })
  }
  return into
}

/**
 * The connections among `connections` whose peer has left, by index: reset,
 * or, with `closedLeft`, closed its side with nothing unread.
 */
export const departed = async (connections: readonly Endpoints[], closedLeft = true): Promise<Set<number>> => {
  const gone = new Set<number>()
  const files = await Promise.allSettled([readFile('/proc/net/tcp', 'utf8'), readFile('/proc/net/tcp6', 'utf8')])
  const table = new Map<string, Kernel>()
  let read = false
  for (const file of files) {
    if (file.status === 'fulfilled') {
      parseProcNetTcp(file.value, table)
      read = true
    }
  }
  if (!read) return gone
  connections.forEach((c, i) => {
    const kernel = table.get(key(c.localAddress, c.localPort, c.remoteAddress, c.remotePort))
    // The FIN takes a sequence number, so after it rx_queue counts one more than the bytes unread.
    if (kernel === undefined || (closedLeft && kernel.state === CLOSE_WAIT && kernel.unread <= 1)) gone.add(i)
  })
  return gone
}

/** The descriptor under a socket, from its libuv handle; null once it is closed. */
export const fdOf = (socket: Socket): number | null => handleFd(rawHandle(socket))

/** What a paused socket's peer did: still there, closed its side with nothing sent (or left: it cannot be told apart), or reset. */
export type PeerState = 'there' | 'closed' | 'reset'

const STATES: readonly PeerState[] = ['there', 'closed', 'reset']

/** Asks the socket itself (the addon's peerState), not the host's table; a socket already closed counts as reset. */
export const peerState = (addon: Pick<Addon, 'peerState'>, socket: Socket): PeerState => {
  const fd = fdOf(socket)
  return fd === null ? 'reset' : (STATES[addon.peerState(fd)] ?? 'reset')
}
