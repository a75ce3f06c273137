// The path of every connection, in the process that accepts it (the parent in
// the fork model, each worker in prefork), written once for both:
//
//   accept → its PROXY header, behind a balancer → judge → deny, drop, or serve
//
// What "judge" weighs is the acceptor's: the parent's admit() (the rules,
// the limits, the queue), a worker's access rules. Each connection ends
// here counted: accepted, then denied or dropped, or handed on to be served.
import type { Socket } from 'node:net'
import type { Log } from '../log/log.js'
import type { Trace } from '../log/trace.js'
import { connectionInfo, judgedByAddress, peerOf } from '../net/address.js'
import type { ConnectionInfo } from '../protocol.js'
import { headerCalls, ProxyReader, type ProxySettings } from '../proxy/proxy-read.js'
import type { Peer, Verdict } from './admission.js'

/** A connection accepted, with who it is from and when it came. */
export interface Accepted {
  readonly socket: Socket
  readonly info: ConnectionInfo
  /** When it was accepted (Date.now()), for the log's timings. */
  readonly acceptedAt: number
}

/** What an acceptor counts of the connections that end here. */
export interface IntakeCounts {
  accepted: number
  denied: number
  dropped: number
  /** Of the dropped, those the full queue turned away (the parent's only). */
  queueFull?: number
}

export interface IntakeParts {
  /** The listener's path when it is a Unix-domain socket (its peers have no address); null for TCP. */
  readonly unixPath: () => string | null
  /** --proxy-protocol: who may send a header, and how long it may take; null when off. */
  readonly proxy: ProxySettings | null
  readonly counts: IntakeCounts
  readonly log: Log
  readonly warn: (text: string) => void
  readonly trace: Trace
  /** Whether the connection is served now, waits, or is turned away. */
  readonly judge: (peer: Peer) => Verdict
  /** A connection judged `admit` or `queue`: the acceptor's to serve. */
  readonly pass: (conn: Accepted, verdict: Verdict) => void
  /** The header step closed a connection: one fewer to wait for. */
  readonly closed?: () => void
}

export class Intake {
  /** --proxy-protocol: reads each connection's PROXY header before it is judged; null when off. */
  readonly proxy: ProxyReader | null

  constructor(private readonly parts: IntakeParts) {
    const { proxy, warn, trace } = parts
    this.proxy = proxy && new ProxyReader(proxy, headerCalls(), (socket, reason, info, shown) => this.drop(socket, reason, info, { shown }), warn, trace)
  }

  /** PROXY headers still awaited: a drain waits for them. */
  get pending(): number {
    return this.proxy?.pending ?? 0
  }

  /** Stops every wait for a header at once (a drain cut short): each such connection is dropped. */
  cancel(): void {
    this.proxy?.cancel()
  }

  /** A connection: behind a balancer, its PROXY header first says whose it is. */
  accept(socket: Socket): void {
    const { parts } = this
    socket.on('error', (err) => parts.trace('socket error before handoff: %s', err.message))
    const path = parts.unixPath()
    if (path === null && socket.remoteAddress === undefined) {
      parts.trace('accept: the peer is already gone')
      return void socket.destroy()
    }
    const conn: Accepted = { socket, info: connectionInfo(socket, ++parts.counts.accepted, path), acceptedAt: Date.now() }
    if (this.proxy === null) return this.admit(conn)
    // (lib/proxy/proxy-read.ts: it reads the header and nothing more; null: it closed the connection)
    void this.proxy.read(socket, conn.info).then((info) => (info === null ? parts.closed?.() : this.admit({ ...conn, info })))
  }

  /** Judges the connection: served now or queued, or turned away. */
  admit(conn: Accepted): void {
    const { socket, info } = conn
    const { parts } = this
    parts.trace('accept %s', peerOf(info))
    parts.log({ event: 'accept', conn: info.id, peer: peerOf(info), pid: process.pid })
    const verdict = parts.judge({ address: info.remoteAddress, unix: !judgedByAddress(info) })
    if (verdict.kind === 'admit' || verdict.kind === 'queue') return parts.pass(conn, verdict)
    if (verdict.kind === 'drop') return this.drop(socket, verdict.reason, info, { queueFull: verdict.step === 'queue' })
    this.deny(socket, info)
  }

  /** --allow/--deny turned the peer away. */
  deny(socket: Socket, info: ConnectionInfo): void {
    this.parts.counts.denied++
    this.parts.log({ event: 'deny', conn: info.id, peer: peerOf(info), pid: process.pid })
    socket.destroy()
  }

  /**
   * Closes a connection unserved, and counts it; `queueFull`: the full queue
   * turned it away; `shown: false`: one of a flood whose lines are held back.
   */
  drop(socket: Socket, reason: string, info: ConnectionInfo, { queueFull = false, shown = true } = {}): void {
    const { counts, log } = this.parts
    counts.dropped++
    if (queueFull) counts.queueFull = (counts.queueFull ?? 0) + 1
    if (shown) log({ event: 'drop', conn: info.id, peer: peerOf(info), reason, pid: process.pid })
    socket.destroy()
  }
}
