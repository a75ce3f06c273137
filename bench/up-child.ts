// The empty child of the start-up rows (startup.ts): one IPC message as soon
// as it runs, then nothing until the parent disconnects. A 'disconnect'
// listener keeps the channel referenced, as forkserver's child does.
process.send?.('up')
process.on('disconnect', () => process.exit(0))
// Even an orphan that nobody disconnects goes away.
setTimeout(() => process.exit(3), 60_000).unref()
export {}
