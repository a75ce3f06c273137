import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { decodeEndpoint, departed, fdOf, parseProcNetTcp, peerState, type Endpoints } from '../../lib/net/peer-state.js'
import { loadAddon } from '../../lib/native/addon.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

t.test('decodes /proc/net/tcp endpoints in host byte order', async (t) => {
  t.same(decodeEndpoint('0100007F:1B58', true), ['127.0.0.1', 7000])
  t.same(decodeEndpoint('7F000001:1B58', false), ['127.0.0.1', 7000])
  t.same(decodeEndpoint('00000000000000000000000001000000:0050', true), ['0:0:0:0:0:0:0:1', 80])
  t.same(decodeEndpoint('0000000000000000FFFF00000100007F:0050', true), ['127.0.0.1', 80], 'IPv4-mapped')
})

t.test('parses states and unread bytes per connection', async (t) => {
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1',
    '   1: 0100007F:1B58 0100007F:D431 08 00000000:00000001 00:00000000 00000000     0        0 2',
    '',
  ].join('\n')
  const table = parseProcNetTcp(text)
  t.equal(table.size, 2)
  t.same([...table.values()].map((k) => k.state), ['0A', '08'])
  t.same([...table.values()].map((k) => k.unread), [0, 1])
})

const pair = async (): Promise<{ client: Socket; accepted: Socket; endpoints: Endpoints; close: () => void }> => {
  const server = createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  const [accepted] = (await once(server, 'connection')) as [Socket]
  const endpoints = {
    localAddress: accepted.localAddress ?? '', localPort: accepted.localPort ?? 0,
    remoteAddress: accepted.remoteAddress ?? '', remotePort: accepted.remotePort ?? 0,
  }
  return { client, accepted, endpoints, close: () => { accepted.destroy(); client.destroy(); server.close() } }
}

// Wait for the kernel's view to change: it does within microseconds on loopback.
const until = async (endpoints: Endpoints, gone: boolean): Promise<boolean> => {
  for (let i = 0; i < 200; i++) {
    if ((await departed([endpoints])).has(0) === gone) return true
    await new Promise((resolve) => setImmediate(resolve))
  }
  return false
}

t.test('a connected peer is there; one that closed or reset has left', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const open = await pair()
  t.teardown(open.close)
  t.same(await departed([open.endpoints]), new Set(), 'connected: present')
  open.client.end()
  t.ok(await until(open.endpoints, true), 'closed (FIN) with nothing unread: left')

  const reset = await pair()
  t.teardown(reset.close)
  reset.client.resetAndDestroy()
  t.ok(await until(reset.endpoints, true), 'reset: left')

  const half = await pair()
  t.teardown(half.close)
  half.client.end('an answer, please')
  await new Promise((resolve) => half.client.once('finish', resolve))
  t.notOk((await departed([half.endpoints])).has(0), 'half-closed with bytes unread: still waiting')
})

// The addon's check asks the one socket; wait for the kernel as above.
const untilGone = async (check: () => boolean): Promise<boolean> => {
  for (let i = 0; i < 200; i++) {
    if (check()) return true
    await new Promise((resolve) => setImmediate(resolve))
  }
  return false
}

t.test('the addon asks one socket: a connected peer is there; one that closed its side or reset is told apart', { skip: skipUnlessBuilt() }, async (t) => {
  const { addon } = loadAddon()
  if (addon === null) return
  const open = await pair()
  t.teardown(open.close)
  t.type(fdOf(open.accepted), 'number', 'the paused socket has a descriptor')
  t.equal(peerState(addon, open.accepted), 'there', 'connected: there')
  open.client.end()
  t.ok(await untilGone(() => peerState(addon, open.accepted) === 'closed'), 'closed its side (FIN) with nothing unread: closed')

  const reset = await pair()
  t.teardown(reset.close)
  reset.client.resetAndDestroy()
  t.ok(await untilGone(() => peerState(addon, reset.accepted) === 'reset'), 'reset: reset')

  const half = await pair()
  t.teardown(half.close)
  half.client.end('an answer, please')
  await new Promise((resolve) => half.client.once('finish', resolve))
  t.equal(peerState(addon, half.accepted), 'there', 'half-closed with bytes unread: still there')
  let read = ''
  half.accepted.on('data', (d: Buffer) => (read += d.toString()))
  half.accepted.resume()
  await new Promise((resolve) => half.accepted.once('end', resolve))
  t.equal(read, 'an answer, please', 'the peek took none of its bytes')

  half.accepted.destroy()
  t.equal(fdOf(half.accepted), null, 'a closed socket has no descriptor')
  t.equal(peerState(addon, half.accepted), 'reset', 'and counts as reset')
})
