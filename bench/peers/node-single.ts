// The baseline a Node user would pick instead of forking: one process, one
// event loop, every connection in it. Echo, as forkserver's echo service does
// it: half-close flushes, then closes.
//   node dist/bench/peers/node-single.js PORT     (0 = any free port)
import { createServer, type AddressInfo } from 'node:net'

const port = Number(process.argv[2] ?? '0')
const server = createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => socket.destroy())
  socket.pipe(socket)
})
server.listen(port, '127.0.0.1', () => {
  process.stderr.write(`listening on 127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
