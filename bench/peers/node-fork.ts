// The floor under --start zygote: a warm Node process that calls the real
// fork(2) for each connection, through forkserver's own addon, started with
// the zygote's flags, and with nothing else of forkserver's. The child echoes
// as the echo service does and _exits; the parent closes its copy of the
// socket and reaps. The zygote does all this and more for each connection,
// so its figures are read against this: it cannot beat them on one machine.
//
// It is a measuring stick, not a server to run: its children skip every
// repair of lib/zygote/forked-child.ts (their pid, their random state, the parent's
// listeners and exits).
//   node --single-threaded ... dist/bench/peers/node-fork.js PORT   (0 = any free port)
import { createServer, type AddressInfo } from 'node:net'
import { loadAddon } from '../../lib/native/addon.js'

const { addon, reason } = loadAddon()
if (addon === null) {
  process.stderr.write(`node-fork: ${reason}\n`)
  process.exit(1)
}

const port = Number(process.argv[2] ?? '0')
const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
  if (addon.fork() !== 0) return void socket.destroy() // the parent: its copy closed
  server.close() // the child: not the listener's, only this connection's
  socket.on('error', () => addon.exit(1))
  socket.on('close', () => addon.exit(0))
  socket.pipe(socket)
  socket.resume()
})
process.on('SIGCHLD', () => void addon.reap())
server.listen(port, '127.0.0.1', () => {
  process.stderr.write(`listening on 127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
