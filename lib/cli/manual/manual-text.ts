// The manual's prose beside the option table: synopsis, description, exit
// statuses, signals, environment and examples. --help (lib/cli/manual/help.ts) and the
// man page (lib/cli/manual/man-page.ts) both print these, so the two say the same.
import { MEMORY_PER_CHILD, THREADS_PER_CHILD } from '../machine-limits.js'
import { LONGEST_TIMER_S } from '../option-table.js'
import { HANDOFF_TIMEOUT_S, ExitStatus } from '../../protocol.js'
import { ORPHAN_DEADLINE_S } from '../../serve/connection.js'
import { TCPSERVER_FORM } from '../tcpserver-form.js'

/** A term and what it means: an exit status, a signal, a variable. */
export interface Entry {
  readonly term: string
  readonly text: string
}

export interface Example {
  /** The command, as shell words. */
  readonly command: readonly string[]
  readonly text: string
}

export const SUMMARY = 'a fork-per-connection TCP server: accept, fork a child, hand it the socket, reap it'

export const SYNOPSIS: readonly string[] = [
  'forkserver [options]',
  TCPSERVER_FORM,
  'forkserver [options] --exec -- PROGRAM [ARGS...]',
]

/** --help prints the first two paragraphs; the man page prints all. */
export const DESCRIPTION: readonly string[] = [
  'forkserver listens on a TCP port, a Unix-domain socket or an inherited descriptor. For each connection it accepts, ' +
    'the parent forks a fresh child, hands the child the socket, and reaps the child when it exits: each child serves ' +
    'one connection, with a built-in service, a --handler module, or a program. By default the children come from a real ' +
    'fork(2) of the zygote, a warm Node with the service loaded (--start auto); without the native addon each is a fresh ' +
    'Node (--start spawn), and the first log line says why. With --model prefork, long-lived ' +
    'workers accept for themselves instead, as in Apache prefork.',
  "The second form is tcpserver's: HOST PORT PROGRAM ARGS... means --host HOST --port PORT --exec -- PROGRAM ARGS..., " +
    "so a tcpserver command line works with one word changed. Options come first, and every word after PROGRAM is the program's, " +
    'options included. HOST PORT alone serves --service or --handler.',
  'Over --max-children, connections wait in a queue of --queue-limit (or are closed at once, with --overflow reject). ' +
    '--allow, --deny, --max-per-ip and --rate turn peers away before any fork. With -v, tcpserver-style lines on ' +
    'stderr show every fork and exit (status: N/MAX, pid P from IP:PORT, end P status S); --log-format json writes ' +
    'every event as a JSON object. Text from outside is escaped, so it cannot split a line. The log never stops the ' +
    'server: when stderr is a pipe nobody reads, lines wait in a 64 KiB buffer, then are dropped and counted (a warning ' +
    'once stderr is read again, and the count at the end of the summary).',
  'Behind a load balancer, --proxy-protocol reads the PROXY header (HAProxy\'s, v1 or v2) that a balancer named by --proxy-from ' +
    'sends first, and the client it names is the one the rules judge, the log shows (CLIENT via BALANCER), and the handler and ' +
    "--exec's variables see. The header is read by a peek and dropped, and nothing after it: the service reads the client's " +
    'bytes as if there had been no header. SIGTERM closes the listener at once, so the balancer\'s checks see the server go, and ' +
    'finishes every connection it accepted: a rolling drain.',
  'Every option is checked before the server starts. A mistake is one line on stderr that names it, and exit status 2. ' +
    `Durations are at most ${LONGEST_TIMER_S} s (24.8 days), Node's longest timer. A --workers, --max-children or --spares ` +
    'given is held to the children this machine can run: the lowest of ulimit -u, the cgroup\'s pids.max and kernel.pid_max ' +
    `at ${THREADS_PER_CHILD} threads a child, and of memory at ${MEMORY_PER_CHILD / 2 ** 20} MiB a child; a --queue-limit given, to ulimit -n. ` +
    'The error names the limit.',
]

export const EXIT_STATUS: readonly Entry[] = [
  { term: '0', text: 'a clean drain: every child finished within --grace (and --help, --version)' },
  { term: '1', text: 'a fatal start failure (one fatal: line; a port in use, say), or children had to be killed at shutdown' },
  { term: '2', text: 'a usage error: one line on stderr naming the problem' },
  { term: '130', text: 'a second SIGINT killed every child' },
]

/** A child's status, in the `end P status S` line. */
export const CHILD_STATUS: readonly Entry[] = [
  { term: String(ExitStatus.OK), text: 'the connection was served and closed normally' },
  { term: String(ExitStatus.FAILED), text: 'the service or handler failed, or the connection ended in an error (a reset, say)' },
  { term: String(ExitStatus.IDLE), text: 'the connection was silent for --idle-timeout seconds and the child closed it' },
  { term: String(ExitStatus.PEER_GONE), text: 'the peer was gone before the child got the socket' },
  { term: String(ExitStatus.NO_SOCKET), text: `no socket arrived within ${HANDOFF_TIMEOUT_S} s, or the parent went away first` },
  { term: String(ExitStatus.ORPHANED), text: 'the parent died, and the connection outlived the orphan deadline' },
  { term: '126, 127', text: 'under --exec, the program could not be started (not executable, not found); else its own status' },
]

export const SIGNALS: readonly Entry[] = [
  { term: 'SIGTERM, SIGINT, SIGQUIT', text: 'drain: the listener closes, queued connections are closed, and children get --grace seconds to finish, ' +
      'then SIGTERM, then SIGKILL 2 s later; exit status 0, or 1 if some had to be killed' },
  { term: 'a second SIGINT', text: 'kills every child with SIGKILL and exits 130 once they are reaped (2 s at most), counted in the summary' },
  { term: 'SIGHUP', text: "reload, like inetd's reload and Apache's graceful restart: every preloaded process (the zygote, each --spares spare " +
      'and each prefork worker) is replaced by a fresh one that loads the service or --handler code as it is now on disk. ' +
      'The listener never closes, so no connect is refused. An old worker accepts until a fresh one accepts in its ' +
      'place, then stops accepting and finishes its connections within --grace (then SIGTERM, SIGKILL 2 s later); ' +
      'busy fork-model children finish as usual. A second SIGHUP during a reload is safe. It logs "reload: SIGHUP, ' +
      'replacing N spares and M workers" (the JSON event reload), naming the zygote it replaces, and the zygote\'s ' +
      'steps: starting, ready (with its self-test time), retiring, exited (the JSON event zygote). The SIGHUP of a terminal closing drains instead, ' +
      'as SIGTERM does.' },
  { term: 'SIGUSR1', text: 'prints the status table (every live child, its state, age and peer) on stderr; changes nothing' },
  { term: 'SIGUSR2', text: 'ignored, with a warning line' },
]

/** What forkserver reads. */
export const ENVIRONMENT: readonly Entry[] = [
  { term: 'DEBUG', text: 'DEBUG=forkserver:* traces every step of the parent and the children on stderr (the debug package)' },
  { term: 'LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES', text: "systemd's socket activation: when LISTEN_PID is forkserver's pid, " +
      'LISTEN_FDS is 1 or more and no --host, --port, --path or --fd is given, it listens on descriptor 3. The variables ' +
      'are removed, so no child or program sees them.' },
  { term: 'COLUMNS', text: 'the width of --help when stdout is not a terminal (80 if unset)' },
]

/** What an --exec program is given, as tcpserver gives it (UCSPI's variables). */
export const PROGRAM_ENVIRONMENT: readonly Entry[] = Object.entries({
  PROTO: 'TCP, or UNIX with --path',
  'TCPREMOTEIP, TCPREMOTEPORT': "the client's address and port (an IPv4-mapped address as plain IPv4)",
  'TCPLOCALIP, TCPLOCALPORT': 'the address and port the client connected to',
  UNIXLOCALPATH: "with --path, the socket's path",
}).map(([term, text]) => ({ term, text }))

export const EXAMPLES: readonly Example[] = [
  { command: ['forkserver'], text: 'echo on 127.0.0.1:7000, a fresh child per connection' },
  { command: ['forkserver', '0', '7000', 'cat', '-n'], text: "tcpserver's form: cat -n serves every connection, on every IPv4 address" },
  { command: ['forkserver', '--exec', '--', 'sh', '-c', "'echo hello $TCPREMOTEIP'"], text: 'greet each client by its address' },
  { command: ['forkserver', '-v', '--service', 'chargen', '--max-children', '10', '--overflow', 'reject'], text: 'chargen to at most 10 clients at once, with a log line per fork and exit' },
  { command: ['forkserver', '--model', 'prefork', '--handler', 'docs/examples/greet.js'], text: 'a worker per CPU, each serving a handler module; SIGHUP loads it afresh' },
  { command: ['forkserver', '--host', '::', '--allow', '10.0.0.0/8', '--rate', '20/10'], text: 'IPv6 and IPv4, only from 10/8, at most 20 new connections per address in 10 s' },
  { command: ['forkserver', '--path', '/tmp/fs.sock', '--service', 'daytime'], text: 'daytime on a Unix-domain socket (nc -U /tmp/fs.sock)' },
  { command: ['DEBUG=forkserver:*', 'forkserver', '-v'], text: 'trace every step of the accept-fork loop' },
  { command: ['systemd-socket-activate', '-l', '127.0.0.1:7000', 'forkserver'], text: 'socket activation, as a systemd .socket unit starts it' },
]

/** The orphan rule, for the man page's description of children. */
export const ORPHANS = `If the parent dies, even by SIGKILL, each child finishes its connection, for at most --idle-timeout seconds ` +
  `(${ORPHAN_DEADLINE_S} s when that is off), and exits. Children run in sessions of their own, so Ctrl-C in a terminal ` +
  'reaches only the parent. A SIGTERM, SIGINT or SIGHUP sent to a child under --exec is passed on to its program.'

export const SEE_ALSO: readonly (readonly [name: string, section: string])[] = [
  ['tcpserver', '1'], ['inetd', '8'], ['xinetd', '8'], ['systemd.socket', '5'], ['systemd-socket-activate', '1'], ['nc', '1'],
  ['fork', '2'], ['accept', '2'],
]
