// Opening the listener: socket(), bind() and listen(), on a TCP address, on a
// Unix-domain socket file, or on a descriptor inherited already listening
// (--fd, or systemd's socket activation).
import { fstatSync, lstatSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync } from 'node:fs'
import { connect, createServer, Socket, type Server, type SocketConstructorOpts } from 'node:net'
import { dirname } from 'node:path'
import { errorMessage } from '../log/log.js'
import { handleFd } from './raw-handle.js'
import type { Addon } from '../native/addon.js'

/**
 * The connections waiting in a listener's backlog (its raw handle), accepted now and
 * wrapped as the server would have given them (`paused`: as with
 * pauseOnConnect). Closing a listening socket resets every connection still
 * in its backlog, and a balancer, which saw each one connect, would not send
 * it elsewhere; so a drain takes them first. Without the addon there is no
 * accept() to call, and none is taken.
 */
export const takeBacklog = (listener: object | null, addon: Pick<Addon, 'acceptPending'> | null, paused: boolean, allowHalfOpen = false): Socket[] => {
  const fd = handleFd(listener)
  if (addon === null || fd === null) return []
  return addon.acceptPending(fd).map((conn) => new Socket({ fd: conn, readable: true, writable: true, allowHalfOpen, pauseOnCreate: paused } as SocketConstructorOpts))
}

/**
 * Before the last takeBacklog of a listener that closes for good (a drain,
 * not a reload): new SYNs are dropped from now on, in every process that
 * holds the socket, so that no connection joins the backlog between the
 * last accept and the close, which would reset it. A dropped SYN is sent
 * again a second later and refused then. Without the addon, nothing.
 */
export const refuseNew = (listener: object, addon: Pick<Addon, 'refuseNew'> | null): void => {
  const fd = handleFd(listener)
  if (addon === null || fd === null) return
  try {
    addon.refuseNew(fd)
  } catch {
    // (a listener that cannot take the filter closes as it always did)
  }
}

/**
 * Where the server listens: a TCP address, a Unix-domain socket file, or a
 * listening descriptor it inherited (--fd, or systemd's socket activation).
 */
export type Endpoint =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'path'; readonly path: string }
  | { readonly kind: 'fd'; readonly fd: number; readonly from: '--fd' | 'LISTEN_FDS' }

/** What the server listens on: a TCP address, or a Unix-domain socket's path. */
export type Bound = { readonly kind: 'tcp'; readonly address: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string }

/** Resolves once the server listens, with what it is bound to; rejects with the reason it cannot. */
export const listen = async (server: Server, endpoint: Endpoint): Promise<Bound> => {
  if (endpoint.kind === 'path') await clearStale(endpoint.path)
  if (endpoint.kind === 'fd') checkDescriptor(endpoint.fd)
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => reject(endpoint.kind === 'fd' ? new Error(`descriptor ${endpoint.fd}: ${err.message}`) : err)
    server.once('error', failed)
    server.once('listening', () => {
      server.off('error', failed)
      resolve()
    })
    if (endpoint.kind === 'tcp') server.listen({ host: endpoint.host, port: endpoint.port })
    else if (endpoint.kind === 'path') server.listen({ path: endpoint.path })
    else server.listen({ fd: endpoint.fd })
  })
  const address = server.address()
  if (typeof address === 'string') return { kind: 'unix', path: address }
  if (address !== null) return { kind: 'tcp', address: address.address, port: address.port }
  // Node names a Unix socket only when it bound it itself; an inherited one is found by its inode.
  return { kind: 'unix', path: endpoint.kind === 'fd' ? inheritedPath(endpoint.fd) : '?' }
}

/** The path of an inherited Unix-domain socket, from /proc (Linux); `fd N` where it cannot be read. */
const inheritedPath = (fd: number): string => {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1]
    const line = readFileSync('/proc/net/unix', 'utf8').split('\n').find((l) => l.split(/\s+/)[6] === inode)
    const path = line?.split(/\s+/)[7]
    if (path) return path
  } catch {
    // not Linux, or no /proc
  }
  return `fd ${fd}`
}

/**
 * Throws, naming the cause, when `fd` is not an open socket: Node's listen()
 * reports a closed descriptor, or a file, as EINVAL.
 */
export const checkDescriptor = (fd: number): void => {
  let isSocket: boolean
  try {
    isSocket = fstatSync(fd).isSocket()
  } catch (err) {
    throw new Error(`descriptor ${fd}: not an open descriptor (${(err as NodeJS.ErrnoException).code})`)
  }
  if (!isSocket) throw new Error(`descriptor ${fd}: not a socket (ENOTSOCK)`)
}

/**
 * A socket file left by a server that died (SIGKILL, a crash) stops bind().
 * It is removed only when it is a socket and nothing answers on it: a live
 * server's socket, or a file that is not a socket, is never touched.
 */
export const clearStale = async (path: string): Promise<void> => {
  let isSocket: boolean
  try {
    isSocket = lstatSync(path).isSocket()
  } catch (err) {
    // (bind() in a missing directory is reported as EACCES)
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return checkDirectory(path)
    throw new Error(`${path}: ${errorMessage(err)}`)
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; not removing it`)
  const answer = await new Promise<string | null>((resolve) => {
    const probe = connect({ path }, () => {
      probe.destroy()
      resolve(null)
    })
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
  if (answer === null) throw new Error(`${path}: another server is listening on it`)
  if (answer !== 'ECONNREFUSED') throw new Error(`${path}: ${answer}`)
  unlinkSync(path)
}

/**
 * Throws, naming the cause, when the directory that is to hold the socket
 * file `path` is missing or is not one. Called once `path` is found absent
 * (ENOENT) or unreachable (ENOTDIR).
 */
const checkDirectory = (path: string): void => {
  const dir = dirname(path)
  let isDirectory: boolean
  try {
    isDirectory = statSync(dir).isDirectory()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(code === 'ENOENT' ? `${path}: its directory ${dir} does not exist (ENOENT)` : `${path}: a part of ${dir} is not a directory (${code})`)
  }
  if (!isDirectory) throw new Error(`${path}: ${dir} is not a directory (ENOTDIR)`)
}

/** The identity (device and inode) of the file at `path`, to tell this server's socket file from a newer one; null when there is none. */
export const socketFileId = (path: string): string | null => {
  try {
    const { dev, ino } = lstatSync(path)
    return `${dev}:${ino}`
  } catch {
    return null
  }
}

/** At exit: removes the socket file if it is still the one this server made. */
export const removeSocketFile = (path: string, id: string | null): void => {
  if (id !== null && socketFileId(path) === id) unlinkSync(path)
}

/**
 * Closes a listener but not the socket file at `path`. libuv unlinks the
 * path a Unix socket was bound to when its handle closes, whatever file is
 * there by then; the file is moved aside for that moment.
 */
export const closeKeepingFile = (server: Server, path: string | null): void => {
  const aside = `${path}.closing-${process.pid}`
  try {
    if (path !== null) renameSync(path, aside)
  } catch {
    return void server.close() // (no file there to keep)
  }
  try {
    server.close()
  } finally {
    if (path !== null) renameSync(aside, path)
  }
}

/** The rules that judge a peer by its address (--allow, --deny, --rate, --max-per-ip), as far as a listener must know them. */
interface PeerRules {
  readonly access: { readonly allow: readonly unknown[]; readonly deny: readonly unknown[] }
  readonly rate: object | null
  readonly maxPerIp: number
}

/**
 * The parent's listener, as it was bound: what a connection's info, a
 * second listen and the exit need to know of it.
 */
export class Listening {
  /** The socket's path when it is a Unix-domain socket (--path, or an inherited one); null for TCP. */
  unixPath: string | null = null
  /** The port first bound, to listen on again (a port 0 is chosen once). */
  #port = 0
  /** The socket file this server made (--path), to remove at exit if it is still ours. */
  #fileId: string | null = null

  constructor(readonly endpoint: Endpoint) {}

  /** Listens; rejects with the reason it cannot, or when a Unix socket came where the rules judge peers by address. */
  async open(server: Server, rules: PeerRules): Promise<Bound> {
    const bound = await listen(server, this.endpoint)
    if (bound.kind === 'unix') this.unixPath = bound.path
    else this.#port = bound.port
    this.#remember()
    // (--path refuses these as usage errors; an inherited descriptor is known only now.)
    const { access, rate, maxPerIp } = rules
    if (bound.kind === 'unix' && (access.allow.length + access.deny.length > 0 || rate !== null || maxPerIp > 0)) throw new Error('the inherited socket is a Unix socket: --allow, --deny, --rate and --max-per-ip need TCP peers')
    return bound
  }

  /** prefork, when no process holds the listener any more: listens afresh. */
  async again(): Promise<Server> {
    const server = createServer()
    await listen(server, this.endpoint.kind === 'tcp' ? { ...this.endpoint, port: this.#port } : this.endpoint)
    this.#remember()
    return server
  }

  /** prefork: the workers hold the listener now; the parent closes its copy. */
  close(server: Server): void {
    closeKeepingFile(server, this.#path())
  }

  /**
   * Shutdown: stops listening. The socket file goes with the listener only
   * while it is this server's: one that another server has bound since (the
   * path was removed, and bound again) stays.
   */
  stop(server: Server): void {
    const path = this.#path()
    if (path === null || socketFileId(path) === this.#fileId) return void server.close()
    closeKeepingFile(server, path)
  }

  /** At exit: removes the socket file, if it is still the one this server made. */
  removeFile(): void {
    const path = this.#path()
    if (path !== null) removeSocketFile(path, this.#fileId)
  }

  /** The socket file's path, when this server bound one (--path). */
  #path(): string | null {
    return this.endpoint.kind === 'path' ? this.endpoint.path : null
  }

  #remember(): void {
    const path = this.#path()
    if (path !== null) this.#fileId = socketFileId(path)
  }
}
