// A forkserver handler: the smallest service worth writing yourself.
//
//   make run ARGS='--handler docs/examples/greet.js'
//   nc 127.0.0.1 7000
//
// forkserver imports this module in a fresh child process for each
// connection and calls its default export once, with the client's socket (a
// net.Socket, as net.createServer would give it) and where the connection
// came from. When the socket closes, the child exits: status 0 if all went
// well. A handler that throws, or whose promise rejects, ends the connection
// and the child exits with status 1.

/**
 * @param {import('node:net').Socket} socket
 * @param {{ id: number, remoteAddress: string, remotePort: number, localAddress: string, localPort: number }} info
 */
export default function greet(socket, info) {
  socket.write(`hello ${info.remoteAddress}:${info.remotePort}, you are connection ${info.id}, served by pid ${process.pid}\n`)
  socket.write('send a line and it comes back in capitals; an empty line ends\n')
  socket.setEncoding('utf8')
  let pending = ''
  socket.on('data', (text) => {
    pending += text
    let newline
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline).replace(/\r$/, '')
      pending = pending.slice(newline + 1)
      if (line === '') return void socket.end('bye\n')
      socket.write(`${line.toUpperCase()}\n`)
    }
  })
}
