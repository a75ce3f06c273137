// A process whose terminal has closed can still exit with its own status
// (Node aborts at exit when it cannot restore a dead terminal's settings).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { terminalGone } from '../../lib/log/terminal.js'
import { watchLines } from '../fixtures/server.js'

const TERMINAL = fileURLToPath(new URL('../fixtures/terminal.py', import.meta.url))
const MODULE = fileURLToPath(new URL('../../dist/lib/log/terminal.js', import.meta.url))

t.test('with stderr on a pipe there is no terminal to lose', async (t) => {
  t.equal(process.stderr.isTTY === true, false, 'tap gives the test a pipe')
  t.notOk(terminalGone())
})

t.test('once its terminal closes, a process sees it gone, leaves it, and exits with its own status', async (t) => {
  const script = `
    import { leaveDeadTerminal, terminalGone } from ${JSON.stringify(MODULE)}
    process.stderr.write('gone before: ' + terminalGone() + '\\n')
    process.on('SIGHUP', () => {
      const gone = terminalGone()
      const left = leaveDeadTerminal()
      process.exit(gone && left && !terminalGone() ? 3 : 4)
    })
    setTimeout(() => process.exit(5), 20000)
  `
  const proc = spawn('python3', [TERMINAL, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => proc.kill('SIGKILL'))
  const { waitForMatches } = watchLines([proc.stderr])
  const find = (pattern: RegExp) => waitForMatches((line) => pattern.exec(line), String(pattern), 1, 0, 20_000)
  await find(/^gone before: false$/)
  proc.kill('SIGUSR1')
  await find(/^exit 3$/)
  t.pass('exit 3: the terminal was gone, stdio moved to /dev/null, and the exit was its own')
})
