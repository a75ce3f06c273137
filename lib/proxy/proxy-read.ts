// --proxy-protocol: who the client really is, when a balancer stands between.
//
// A balancer (HAProxy, nginx's stream module, a cloud's load balancer)
// connects to us itself, so every peer is the balancer. With the PROXY
// protocol it sends a header first: the client's address and port, and the
// address it reached. The process that accepts reads that header before it
// judges the connection (the parent in the fork model, a worker in prefork):
//
//   accept(); read the header; admit(the client it names); fork(); ...
//
// It reads the header and nothing more. A balancer sends the client's first
// bytes in the same segment, and those belong to the service, or to an
// --exec program that reads the descriptor itself. So the header is found
// with a peek, which leaves every byte in the kernel, and then exactly its
// length is read and dropped (lib/native/fork.c: peek, discard, whenReadable).
// The child gets a socket whose next byte is the client's first.
import { setMaxListeners } from 'node:events'
import type { Socket } from 'node:net'
import { normalizeAddress, peerOf } from '../net/address.js'
import { isAllowed, type Cidr } from '../net/cidr.js'
import { errorMessage } from '../log/log.js'
import { fdOf } from '../net/peer-state.js'
import type { ConnectionInfo } from '../protocol.js'
import { parseProxyHeader, V2_MAX, type ProxyHeader } from './proxy-header.js'
import type { Trace } from '../log/trace.js'
import { loadAddon, type Addon } from '../native/addon.js'

/**
 * The connection as a PROXY header names it (lib/proxy/proxy-read.ts): the
 * client's address and the one it reached, with the balancer beside them.
 * A header that does not know them (UNKNOWN) leaves the connection's own.
 */
export const proxiedInfo = (info: ConnectionInfo, header: ProxyHeader): ConnectionInfo => {
  const via = peerOf(info)
  if (header.kind !== 'proxy') return { ...info, via }
  const { source, destination } = header
  return header.family === 'UNIX'
    ? { id: info.id, protocol: 'UNIX', remoteAddress: source.address, remotePort: 0, localAddress: destination.address, localPort: 0, via }
    : {
        id: info.id,
        protocol: 'TCP',
        remoteAddress: normalizeAddress(source.address),
        remotePort: source.port,
        localAddress: normalizeAddress(destination.address),
        localPort: destination.port,
        via,
      }
}

/** What the header said, once it is read. */
export type Arrival =
  /** The client, as the header names it: `header.kind` 'proxy'; 'unknown' keeps the real endpoints. */
  | { readonly kind: 'client'; readonly header: ProxyHeader }
  /** The balancer's own health check (v2 LOCAL, or a connect and close with nothing sent): closed quietly. */
  | { readonly kind: 'check' }
  /** Closed unserved, with a warning: why. */
  | { readonly kind: 'drop'; readonly reason: string }

export interface ProxySettings {
  /** --proxy-from: the balancers trusted to send a header. */
  readonly from: readonly Cidr[]
  /** --proxy-timeout: seconds for the whole header to arrive. */
  readonly timeoutS: number
}

/** The system calls the header is read with (the native addon's). */
export type HeaderCalls = Pick<Addon, 'peek' | 'discard' | 'whenReadable' | 'unwatch'>

/** True when `address`, the peer as it connected, may send a header; a Unix-domain peer (no address) always may. */
export const trusted = (settings: ProxySettings, address: string | null): boolean =>
  address === null || isAllowed({ allow: settings.from, deny: [] }, normalizeAddress(address))

/**
 * Reads the PROXY header at the front of `socket`, which must be paused (it
 * never reads it through Node). Resolves once the header is whole, or the
 * connection is a health check, or it must be dropped: untrusted, too slow,
 * malformed, too long, or gone. `abort` ends the wait at once (a drain cut short).
 */
export const readProxyHeader = (socket: Socket, peer: string | null, settings: ProxySettings, calls: HeaderCalls, abort?: AbortSignal): Promise<Arrival> => {
  if (!trusted(settings, peer)) return Promise.resolve({ kind: 'drop', reason: 'not a trusted balancer (--proxy-from)' })
  const fd = fdOf(socket)
  if (fd === null) return Promise.resolve({ kind: 'check' }) // (already closed: nothing to say)
  return new Promise((resolve) => {
    let watch: number | null = null
    const done = (arrival: Arrival): void => {
      clearTimeout(timer)
      abort?.removeEventListener('abort', aborted)
      if (watch !== null) calls.unwatch(watch)
      watch = null
      resolve(arrival)
    }
    const timer = setTimeout(() => done({ kind: 'drop', reason: `no PROXY header within ${settings.timeoutS}s` }), settings.timeoutS * 1000)
    const aborted = (): void => done({ kind: 'drop', reason: 'shutting down' })
    abort?.addEventListener('abort', aborted)
    // Until `atLeast` bytes wait unread, or the end; a watch that cannot be set (no descriptor left for its dup) drops it.
    const wait = (atLeast: number): void => {
      try {
        watch = calls.whenReadable(fd, atLeast, look)
      } catch (err) {
        done({ kind: 'drop', reason: `cannot wait for its PROXY header: ${errorMessage(err)}` })
      }
    }
    const look = (ended: boolean): void => {
      watch = null
      const seen = lookAtHeader(fd, calls, ended)
      if (seen.kind === 'wait') wait(seen.atLeast)
      else done(seen)
    }
    look(false)
  })
}

/**
 * One look at what waits unread at the front of `fd` (`ended`: the peer has
 * closed its side, or reset): the header, read and dropped once it is whole;
 * or how many bytes to wait for before the next look; or why it is dropped.
 */
const lookAtHeader = (fd: number, calls: HeaderCalls, ended: boolean): Arrival | { readonly kind: 'wait'; readonly atLeast: number } => {
  let bytes: Buffer | null
  try {
    bytes = calls.peek(fd, V2_MAX)
  } catch {
    return { kind: 'check' } // reset: the peer is gone, and nobody is there to tell
  }
  if (bytes === null) return { kind: 'wait', atLeast: 1 }
  if (bytes.length === 0) return { kind: 'check' } // connected and closed, with nothing sent
  const parsed = parseProxyHeader(bytes)
  if (parsed.kind === 'invalid') return { kind: 'drop', reason: `bad PROXY header: ${parsed.reason}` }
  if (parsed.kind === 'incomplete') {
    return ended ? { kind: 'drop', reason: `bad PROXY header: cut short after ${bytes.length} bytes` } : { kind: 'wait', atLeast: bytes.length + 1 }
  }
  const { header } = parsed
  if (header.kind === 'local') return { kind: 'check' }
  let read: number
  try {
    read = calls.discard(fd, header.length)
  } catch {
    return { kind: 'check' }
  }
  return read === header.length ? { kind: 'client', header } : { kind: 'drop', reason: `bad PROXY header: read ${read} of its ${header.length} bytes` }
}

/**
 * Warnings about dropped headers, at most `perSecond` lines a second: a
 * flood of bad connections must not become a flood of log lines. What is
 * held back is counted, and said in one line once its second is over.
 */
export class WarningLimit {
  #shown = 0
  #held = 0
  #timer: NodeJS.Timeout | null = null

  constructor(
    private readonly warn: (text: string) => void,
    private readonly perSecond = 5,
  ) {}

  /** True when one more line may be shown this second; false counts one held back. */
  allow(): boolean {
    if (this.#timer === null) this.#timer = setTimeout(() => this.#tick(), 1000).unref()
    if (this.#shown < this.perSecond) {
      this.#shown++
      return true
    }
    this.#held++
    return false
  }

  #tick(): void {
    this.#timer = null
    if (this.#held > 0) this.warn(`${this.#held} PROXY header drops not shown`)
    this.#shown = 0
    this.#held = 0
  }
}

/**
 * The parent's and a worker's side of it: reads each connection's header,
 * closes what the header step turns away (the warnings limited), and knows
 * how many headers are still awaited, which a drain waits for.
 */
export class ProxyReader {
  #pending = 0
  readonly #abort = new AbortController()
  readonly #limit: WarningLimit

  constructor(
    private readonly settings: ProxySettings,
    private readonly calls: HeaderCalls,
    /** Closes a connection unserved and counts it, and logs it when `shown`. */
    private readonly drop: (socket: Socket, reason: string, info: ConnectionInfo, shown: boolean) => void,
    warn: (text: string) => void,
    private readonly trace: Trace,
  ) {
    this.#limit = new WarningLimit(warn)
    // One listener per header awaited, each removed when its wait ends: as
    // many as there are connections, so Node's leak warning (at 11) is off.
    setMaxListeners(0, this.#abort.signal)
  }

  /** Headers still awaited. */
  get pending(): number {
    return this.#pending
  }

  /** The connection as its header names it; null when the header step closed it. */
  async read(socket: Socket, info: ConnectionInfo): Promise<ConnectionInfo | null> {
    this.#pending++
    const peer = info.protocol === 'UNIX' ? null : info.remoteAddress
    const arrival = await readProxyHeader(socket, peer, this.settings, this.calls, this.#abort.signal)
    this.#pending--
    if (arrival.kind === 'client') return proxiedInfo(info, arrival.header)
    if (arrival.kind === 'check') {
      this.trace('%s: a health check, or gone with nothing sent', peerOf(info))
      socket.destroy()
    } else this.drop(socket, arrival.reason, info, this.#limit.allow())
    return null
  }

  /** Stops every wait at once (a drain cut short): each such connection is dropped. */
  cancel(): void {
    this.#abort.abort()
  }
}

/** The addon's calls, which --proxy-protocol needs (lib/cli/options.ts refuses it without them). */
export const headerCalls = (): HeaderCalls => {
  const { addon, reason } = loadAddon()
  if (addon === null) throw new Error(`--proxy-protocol is unavailable: ${reason}`)
  return addon
}
