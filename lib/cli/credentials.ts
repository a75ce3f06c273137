// --user and --group: the uid and gid children run with, looked up once by
// the parent. Node has no getpwnam(), so the names go through getent(1).
import { execFileSync } from 'node:child_process'

export interface Credentials {
  readonly uid: number
  readonly gid: number
}

/** The fields of the getent line for `name`, or null when there is none. */
const getent = (database: 'passwd' | 'group', name: string): string[] | null => {
  try {
    return execFileSync('getent', [database, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.split(':')
  } catch {
    return null
  }
}

/**
 * Resolves --user and --group (names or numbers) to ids. Without --group the
 * user's own group is used. Throws a one-line message naming the option.
 */
export const resolveCredentials = (user: string | undefined, group: string | undefined): Credentials | null => {
  if (user === undefined && group === undefined) return null
  let uid = process.getuid?.() ?? 0
  let gid = process.getgid?.() ?? 0
  if (user !== undefined) {
    const entry = getent('passwd', user)
    if (entry === null) throw new Error(`--user: no such user: ${user}`)
    uid = Number(entry[2])
    gid = Number(entry[3])
  }
  if (group !== undefined) {
    const entry = getent('group', group)
    if (entry === null) throw new Error(`--group: no such group: ${group}`)
    gid = Number(entry[2])
  }
  return { uid, gid }
}
