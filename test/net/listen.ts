import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { closeKeepingFile, refuseNew, removeSocketFile, socketFileId, takeBacklog } from '../../lib/net/listen.js'
import { rawHandle } from '../../lib/net/raw-handle.js'
import { loadAddon } from '../../lib/native/addon.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const dir = (t: Test): string => {
  const made = mkdtempSync(join(tmpdir(), 'fs-'))
  t.teardown(() => rmSync(made, { recursive: true, force: true }))
  return made
}

t.test("a file's identity is its device and inode; a file put in its place is another", async (t) => {
  const at = dir(t)
  const path = join(at, 'file')
  t.equal(socketFileId(path), null, 'none where there is no file')
  writeFileSync(path, 'first')
  const first = socketFileId(path)
  const { dev, ino } = lstatSync(path)
  t.equal(first, `${dev}:${ino}`)
  // Made while the first exists, the second has an inode of its own.
  writeFileSync(join(at, 'second'), 'second')
  renameSync(join(at, 'second'), path)
  removeSocketFile(path, first)
  t.ok(existsSync(path), 'a newer file in its place is not removed')
  removeSocketFile(path, socketFileId(path))
  t.notOk(existsSync(path), 'its own is')
})

t.test('closing a listener whose socket file is gone just closes it', async (t) => {
  const path = join(dir(t), 's.sock')
  const server = createServer().listen(path)
  await new Promise((resolve) => server.once('listening', resolve))
  rmSync(path)
  closeKeepingFile(server, path)
  await new Promise((resolve) => server.once('close', resolve))
  t.notOk(existsSync(path))
})

t.test('takeBacklog(): the connections that wait in the backlog, accepted and wrapped, each with its bytes', { skip: skipUnlessBuilt() }, async (t) => {
  const server = createServer({ pauseOnConnect: true }, () => t.fail('the server accepted nothing itself'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  // spawnSync holds this process's loop: the clients' handshakes complete into the backlog, unaccepted.
  const clients = spawnSync(process.execPath, ['-e', `
    const net = require('node:net')
    for (const n of [1, 2, 3]) net.connect(${port}, '127.0.0.1', function () { this.end('client ' + n, () => this.destroy()) })
  `], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 10_000 })
  t.equal(clients.status, 0, clients.stderr)
  const sockets = takeBacklog(rawHandle(server), loadAddon().addon, true)
  t.equal(sockets.length, 3, 'all three, taken before Node could accept them')
  const texts = await Promise.all(sockets.map(async (socket) => {
    t.ok(socket.isPaused(), 'paused, as pauseOnConnect gives them')
    t.equal(socket.remoteAddress, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.resume()
    await once(socket, 'end')
    socket.destroy()
    return Buffer.concat(chunks).toString()
  }))
  t.same(texts.sort(), ['client 1', 'client 2', 'client 3'])
  t.same(takeBacklog(rawHandle(server), loadAddon().addon, true), [], 'then the backlog is empty')
  t.same(takeBacklog(rawHandle(server), null, true), [], 'and without the addon, none is ever taken')
})

t.test('refuseNew(): a listener about to close takes no new connection, those up still flow, and a new client is refused once it closes', { skip: skipUnlessBuilt() }, async (t) => {
  const { addon } = loadAddon()
  const server = createServer((socket) => socket.pipe(socket))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const up = connect(port, '127.0.0.1')
  await once(up, 'connect')
  refuseNew(rawHandle(server), addon)
  const late = connect(port, '127.0.0.1')
  const lateEnd = new Promise<string>((resolve) => {
    late.once('connect', () => resolve('connected'))
    late.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
  up.write('still flows')
  t.equal(String((await once(up, 'data'))[0]), 'still flows', 'a connection that was up flows on')
  t.same(takeBacklog(rawHandle(server), addon, false), [], 'the new SYN joined no backlog')
  up.destroy()
  server.close()
  // (Its SYN is sent again a second later, and finds no listener.)
  t.equal(await lateEnd, 'ECONNREFUSED', 'the new client is refused, never connected')
})

t.test('refuseNew() leaves a Unix-domain listener alone, does nothing without the addon, and never throws', { skip: skipUnlessBuilt() }, async (t) => {
  const path = join(dir(t), 'r.sock')
  const server = createServer((socket) => socket.end('served'))
  server.listen(path)
  await once(server, 'listening')
  t.teardown(() => server.close())
  refuseNew(rawHandle(server), loadAddon().addon)
  refuseNew(rawHandle(server), null)
  t.doesNotThrow(() => refuseNew({ fd: 1 }, { refuseNew: () => { throw new Error('refuseNew: Bad file descriptor') } }), 'a listener the filter cannot take closes as before')
  const client = connect(path)
  t.equal(String((await once(client, 'data'))[0]), 'served', 'it serves on')
  client.destroy()
})
