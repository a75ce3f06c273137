import { existsSync, lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { closeKeepingFile, removeSocketFile, socketFileId } from '../lib/listen.js'

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
