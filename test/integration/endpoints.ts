// Where the server listens: IPv6 (dual-stack), a Unix-domain socket file
// with both models, and a listening descriptor it inherits (--fd, or
// systemd's LISTEN_FDS).
import { linkSync, lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { closeKeepingFile } from '../../lib/net/listen.js'
import { collect, exchange } from '../fixtures/client.js'
import { runServer, startServer, stopServer, type Running } from '../fixtures/server.js'

/** Echo over a Unix-domain socket: connect, send, half-close, collect. */
const exchangeUnix = (path: string, payload: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect({ path }, () => {
      collect(socket).then((reply) => resolve(reply.data.toString()), reject)
      socket.end(payload)
    })
    socket.once('error', reject)
  })

const exists = (path: string): boolean => {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

/** A short directory (a socket's path has at most 107 bytes), removed after the test. */
const socketDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const listening = async (server: Running): Promise<string> => (await server.waitFor(/^listening on (.+), pid \d+$/))[1]!

t.test('--host :: serves IPv6 and IPv4 clients both', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--host', '::', '-v'])
  t.match(server.lines, [/^listening on \[::\]:\d+, pid \d+$/])
  t.equal((await exchange(server.port, 'over v6', '::1')).data.toString(), 'over v6')
  t.equal((await exchange(server.port, 'over v4', '127.0.0.1')).data.toString(), 'over v4')
  await server.waitFor(/^pid \d+ from \[::1\]:\d+$/)
  await server.waitFor(/^pid \d+ from 127\.0\.0\.1:\d+$/, 0)
  t.same(await stopServer(server), { code: 0, signal: null })
})

for (const model of ['fork', 'prefork'] as const) {
  t.test(`--path serves a Unix-domain socket with the ${model} model and removes it on exit`, async (t) => {
    const path = join(socketDir(t), 'fs.sock')
    const args = model === 'prefork' ? ['--model', 'prefork', '--workers', '2'] : []
    const server = runServer(t, ['--path', path, '-v', ...args])
    t.equal(await listening(server), `unix:${path}`)
    if (model === 'prefork') await server.waitForCount(/^status: 2\/2$/, 1)
    t.ok(lstatSync(path).isSocket(), 'the socket file is there')
    const replies = await Promise.all(['one', 'two', 'three'].map((text) => exchangeUnix(path, text)))
    t.same(replies, ['one', 'two', 'three'], 'each client gets its own bytes back')
    if (model === 'fork') await server.waitFor(new RegExp(`^pid \\d+ from unix:${path}$`))
    t.same(await stopServer(server), { code: 0, signal: null })
    t.match(server.lines.at(-1), /^shutdown: served 3, /)
    t.notOk(exists(path), 'the socket file is gone')
  })
}

for (const model of ['fork', 'prefork'] as const) {
  t.test(`with the ${model} model, a server whose socket file was removed and bound again by another leaves the new one at its exit`, async (t) => {
    const path = join(socketDir(t), 'fs.sock')
    const args = model === 'prefork' ? ['--model', 'prefork', '--workers', '1'] : []
    const a = runServer(t, ['--path', path, '-v', ...args])
    await listening(a)
    rmSync(path)
    const b = runServer(t, ['--path', path, '-v', ...args])
    await listening(b)
    if (model === 'prefork') await b.waitFor(/^status: 1\/1$/)
    const ours = lstatSync(path).ino
    t.same(await stopServer(a), { code: 0, signal: null }, 'the first server exits')
    t.equal(lstatSync(path).ino, ours, "the second server's socket file is in place")
    t.equal(await exchangeUnix(path, 'still here'), 'still here', 'and answering')
    t.same(await stopServer(b), { code: 0, signal: null })
    t.notOk(exists(path), 'the second server removes its own file at its exit')
  })
}

t.test('--path replaces a stale socket file, but not a live one and not a plain file', async (t) => {
  const dir = socketDir(t)
  // A stale socket: bound, then its process died (here: closed without unlink).
  const stale = join(dir, 'stale.sock')
  const dead = createServer().listen(stale)
  await new Promise((resolve) => dead.once('listening', resolve))
  // Closing a listener unlinks its file, so copy the socket's inode aside first.
  linkSync(stale, `${stale}.keep`)
  await new Promise((resolve) => dead.close(resolve))
  renameSync(`${stale}.keep`, stale)
  t.ok(lstatSync(stale).isSocket(), 'a socket file nobody listens on')
  const server = runServer(t, ['--path', stale])
  t.equal(await listening(server), `unix:${stale}`)
  t.equal(await exchangeUnix(stale, 'fresh'), 'fresh', 'served on the fresh socket')

  const second = runServer(t, ['--path', stale])
  t.same(await second.exited, { code: 1, signal: null }, 'a second server will not take a live socket')
  t.same(second.lines.filter(Boolean), [`fatal: ${stale}: another server is listening on it`])
  t.equal(await exchangeUnix(stale, 'still'), 'still', 'the first server still serves')
  await stopServer(server)

  const plain = join(dir, 'notes.txt')
  writeFileSync(plain, 'keep me')
  const third = runServer(t, ['--path', plain])
  t.same(await third.exited, { code: 1, signal: null })
  t.same(third.lines.filter(Boolean), [`fatal: ${plain} exists and is not a socket; not removing it`])
  t.ok(lstatSync(plain).isFile(), 'the plain file is untouched')
})

/** A listening socket in this process, TCP or at `path`, to hand down as a descriptor. */
const listener = async (path?: string): Promise<{ server: Server; fd: number; port: number }> => {
  const server = createServer()
  await new Promise<void>((resolve) => (path === undefined ? server.listen(0, '127.0.0.1', resolve) : server.listen(path, resolve)))
  // The descriptor under the listener, as spawn() can pass it down.
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  return { server, fd, port: path === undefined ? (server.address() as AddressInfo).port : 0 }
}

t.test('--fd 3 serves on a listening socket it inherited, as inetd or a supervisor would pass it', async (t) => {
  const { server: ours, fd, port } = await listener()
  const server = runServer(t, ['--fd', '3', '-v'], {}, { inherit: [fd] })
  ours.close() // the server has its own copy now; this process must not accept on it
  t.equal(await listening(server), `127.0.0.1:${port}`)
  t.equal((await exchange(port, 'inherited')).data.toString(), 'inherited')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('a drain leaves an inherited socket as it found it: another server on it serves on', async (t) => {
  // As systemd keeps a socket unit's listener for the next start: the drain
  // must not leave it refusing new clients (lib/net/listen.ts refuseNew is for a
  // listener that closes for good).
  const { server: ours, fd, port } = await listener()
  const first = runServer(t, ['--fd', '3', '-v'], {}, { inherit: [fd] })
  const second = runServer(t, ['--fd', '3', '--model', 'prefork', '--workers', '1', '-v'], {}, { inherit: [fd] })
  ours.close()
  await Promise.all([listening(first), listening(second)])
  t.same(await stopServer(first), { code: 0, signal: null })
  const socket = connect(port, '127.0.0.1')
  const reply = collect(socket, 5000) // (a socket left refusing would never answer)
  socket.end('after the drain')
  t.equal((await reply).data.toString(), 'after the drain', 'the other server still takes new clients on it')
  socket.destroy()
  t.same(await stopServer(second), { code: 0, signal: null })
})

t.test('--fd with the prefork model hands the inherited socket to the workers', async (t) => {
  const { server: ours, fd, port } = await listener()
  const server = runServer(t, ['--fd', '3', '--model', 'prefork', '--workers', '2', '-v'], {}, { inherit: [fd] })
  ours.close()
  await server.waitForCount(/^status: 2\/2$/, 1)
  const replies = await Promise.all(['a', 'b', 'c', 'd'].map((text) => exchange(port, text)))
  t.same(replies.map((r) => r.data.toString()), ['a', 'b', 'c', 'd'])
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('--fd with an inherited Unix-domain socket finds its path, and refuses rules that need a TCP peer', async (t) => {
  const path = join(socketDir(t), 'inherited.sock')
  const { server: ours, fd } = await listener(path)
  const server = runServer(t, ['--fd', '3', '--model', 'prefork', '--workers', '1'], {}, { inherit: [fd] })
  const refused = runServer(t, ['--fd', '3', '--allow', '127.0.0.1'], {}, { inherit: [fd] })
  // This process stops accepting, and keeps the file (closing the listener that bound it would unlink it).
  closeKeepingFile(ours, path)
  t.equal(await listening(server), `unix:${path}`)
  t.equal(await exchangeUnix(path, 'over an inherited unix socket'), 'over an inherited unix socket')
  t.same(await refused.exited, { code: 1, signal: null })
  t.match(refused.lines[0], /^fatal: the inherited socket is a Unix socket: --allow, --deny, --rate and --max-per-ip need TCP peers$/)
  t.same(await stopServer(server), { code: 0, signal: null })
  t.ok(lstatSync(path).isSocket(), 'a socket file the server did not make is left alone')
})

// What systemd does for a socket unit: bind, listen, then exec the service
// with the socket on descriptor 3 and LISTEN_FDS=1, LISTEN_PID=its own pid.
const SYSTEMD = `
import os, socket, sys
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(16)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
os.environ['LISTEN_FDNAMES'] = 'forkserver.socket'
os.execv(sys.argv[1], sys.argv[1:])
`

t.test('LISTEN_FDS and LISTEN_PID for this process: it serves on descriptor 3 with no option, and children do not see them', async (t) => {
  const server = runServer(t, ['-v', '--exec', '--', 'sh', '-c', 'echo "${LISTEN_FDS:-unset} ${LISTEN_PID:-unset}"'], {}, { via: ['python3', '-c', SYSTEMD] })
  const port = Number((await listening(server)).split(':')[1])
  t.equal((await exchange(port)).data.toString(), 'unset unset\n', 'the variables were for the server only')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('LISTEN_FDS meant for another process is ignored', async (t) => {
  const server = await startServer(t, [], { LISTEN_FDS: '1', LISTEN_PID: '1' })
  t.equal((await exchange(server.port, 'tcp as asked')).data.toString(), 'tcp as asked')
  await stopServer(server)
})
