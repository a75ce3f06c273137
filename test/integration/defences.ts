// --max-lifetime, --rate, --user/--group, and the rules for mapped addresses.
import { spawnSync } from 'node:child_process'
import { realpathSync, statSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { SERVER, alive, exitedWithin, outsideTap, startServer, stopServer } from '../fixtures/server.js'
import { anyStart, forEachStart } from '../fixtures/starts.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/handlers/${name}`, import.meta.url))
const isRoot = process.getuid?.() === 0

/**
 * Why user nobody could not run this Node, or false: a directory on its way
 * that other users may not search (a Node fetched into root's home for
 * another line, say). Then --user's children could not start at all.
 */
const closedToNobody = (path: string): string | false => {
  for (let at = realpathSync(path); ; at = dirname(at)) {
    if ((statSync(at).mode & 0o001) === 0) return `user nobody cannot reach the Node at ${path}: ${at} is closed to other users`
    if (dirname(at) === at) return false
  }
}
const nobodyCannotRun = closedToNobody(process.execPath)

const openFrom = (port: number, localAddress: string, host = '127.0.0.1'): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ port, host, localAddress }, () => resolve(socket))
    socket.once('error', reject)
  })

forEachStart('--max-lifetime ends a child that hangs: SIGTERM, with the reason logged', async (t, start) => {
  const server = await startServer(t, [...start.args, '--max-lifetime', '1', '--handler', fixture('whoami.js'), '-v'])
  const socket = await open(server.port)
  const { pid } = JSON.parse(await readLine(socket)) as { pid: number }
  const closed = collect(socket)
  await server.waitFor(new RegExp(`^warning: pid ${pid} outlived --max-lifetime 1s; ending it$`))
  await server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))
  t.ok(['end', 'reset'].includes((await closed).ended), 'the client sees the close')
  await stopServer(server)
})

forEachStart('--max-lifetime kills a child that ignores SIGTERM 2 s later', async (t, start) => {
  const server = await startServer(t, [...start.args, '--max-lifetime', '1', '--handler', fixture('stubborn.js'), '-v'])
  const socket = await open(server.port)
  t.equal(await readLine(socket), 'ready')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  const warned = await server.waitFor(new RegExp(`^warning: pid ${pid} outlived`))
  const at = Date.now()
  await server.waitFor(new RegExp(`^end ${pid} signal SIGKILL$`), server.lines.indexOf(warned.input))
  t.ok(Date.now() - at >= 1500, 'SIGKILL came about 2 s after the SIGTERM')
  socket.destroy()
  await stopServer(server)
})

forEachStart("--max-lifetime's SIGKILL reaches what the child started too: its process group", async (t, start) => {
  const server = await startServer(t, [...start.args, '--max-lifetime', '1', '--handler', fixture('spawner.js'), '-v'])
  const socket = await open(server.port)
  const { pid, sleeper } = JSON.parse(await readLine(socket)) as { pid: number; sleeper: number }
  t.ok(alive(sleeper), 'the child started a process')
  await server.waitFor(new RegExp(`^end ${pid} signal SIGKILL$`))
  t.ok(await exitedWithin(sleeper, 5000), 'which was killed with it')
  socket.destroy()
  await stopServer(server)
})

forEachStart('--rate turns away an address over its rate, and only that address', async (t, start) => {
  const server = await startServer(t, [...start.args, '--rate', '3/60', '-v'])
  for (let i = 0; i < 3; i++) t.equal((await exchange(server.port, `ok ${i}`)).data.toString(), `ok ${i}`)
  const fourth = await open(server.port)
  const port = fourth.localPort
  t.equal((await collect(fourth)).data.length, 0, 'the fourth within the window is closed')
  await server.waitFor(new RegExp(`^warning: dropping connection, rate 3/60s exceeded: 127\\.0\\.0\\.1:${port}$`))
  const other = await openFrom(server.port, '127.0.0.2')
  const reply = collect(other)
  other.end('other address')
  t.equal((await reply).data.toString(), 'other address')
  await stopServer(server)
})

forEachStart('IPv4-mapped peers count as their IPv4 address for --rate and --max-per-ip', async (t, start) => {
  const server = await startServer(t, [...start.args, '--host', '::', '--rate', '2/60', '--max-per-ip', '1', '--handler', fixture('whoami.js'), '-v'])
  const first = await open(server.port, '127.0.0.1')
  const report = JSON.parse(await readLine(first)) as { info: { remoteAddress: string } }
  t.equal(report.info.remoteAddress, '127.0.0.1', 'the handler sees plain IPv4')
  const second = await open(server.port, '127.0.0.1')
  const secondPort = second.localPort
  await collect(second)
  await server.waitFor(new RegExp(`^warning: dropping connection, max-per-ip 1 reached: 127\\.0\\.0\\.1:${secondPort}$`))
  first.end()
  await server.waitFor(/^end \d+ status 0$/)
  const third = await open(server.port, '127.0.0.1')
  const thirdPort = third.localPort
  await collect(third)
  await server.waitFor(new RegExp(`^warning: dropping connection, rate 2/60s exceeded: 127\\.0\\.0\\.1:${thirdPort}$`))
  const v6 = await open(server.port, '::1')
  t.match(await readLine(v6), /"remoteAddress":"::1"/, 'an IPv6 peer has its own count')
  v6.end()
  await stopServer(server)
})

forEachStart('--user and --group: children run with the ids asked for', async (t, start) => {
  // tap's coverage hooks would write as that user into this checkout: run without them.
  const server = await startServer(t, [...start.args, '--user', 'nobody', '--group', 'nogroup', '--handler', fixture('ids.js')], {}, { outsideTap: true })
  const ids = JSON.parse(await readLine(await open(server.port))) as { uid: number; gid: number; groups: number[] }
  const expected = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim()
  t.equal(ids.uid, Number(expected))
  t.equal(ids.gid, Number(spawnSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).stdout.split(':')[2]))
  t.same(ids.groups, [ids.gid], 'no supplementary group of the parent is kept')
  t.equal((await exchange(server.port, '')).ended, 'end')
  await stopServer(server)
}, { skip: isRoot ? nobodyCannotRun : 'needs root' })

t.test('--user for a user that does not exist, or without root, is a usage error', anyStart, async (t) => {
  const missing = spawnSync(process.execPath, [SERVER, '--user', 'no-such-user-here'], { encoding: 'utf8' })
  t.equal(missing.status, 2)
  t.equal(missing.stderr, 'forkserver: --user: no such user: no-such-user-here (see --help)\n')
  if (!isRoot) return
  if (nobodyCannotRun !== false) return void t.comment(`not run as nobody: ${nobodyCannotRun}`)
  const unprivileged = spawnSync('env', [...outsideTap(process.env), process.execPath, SERVER, '--port', '0', '--user', 'nobody'],
    { encoding: 'utf8', uid: 65534, gid: 65534, timeout: 10_000 })
  t.equal(unprivileged.status, 2)
  t.match(unprivileged.stderr, /^forkserver: --user and --group need root to switch ids, and forkserver runs as uid 65534 \(see --help\)\n$/)
})

t.test('--max-lifetime applies to prefork workers too: ended, logged, and replaced', anyStart, async (t) => {
  // Long enough for a worker to start even on a busy machine, so that it is ended while serving.
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--max-lifetime', '3', '-v'], { DEBUG: 'forkserver:parent' })
  const pid = Number((await server.waitFor(/forkserver:parent worker (\d+) is accepting$/))[1])
  t.equal((await exchange(server.port, 'before')).data.toString(), 'before', 'the first worker serves')
  await server.waitFor(new RegExp(`^warning: pid ${pid} outlived --max-lifetime 3s; ending it$`))
  await server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))
  await server.waitFor(new RegExp(`^warning: worker ${pid} was killed by SIGTERM; a new one in `))
  await server.waitForCount(/worker \d+ is accepting$/, 2)
  t.equal((await exchange(server.port, 'after')).data.toString(), 'after', 'its successor serves')
  await stopServer(server)
})
