// The version in forkserver's own package.json, found from wherever this
// file runs: lib/ in the source tree, dist/lib/ once built or installed.
import { readFileSync } from 'node:fs'

export const packageVersion = (): string => {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg: { name?: string; version?: string } = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'))
      if (pkg.name === 'forkserver' && pkg.version) return pkg.version
    } catch {
      // not here; look one directory up
    }
    if (dir.pathname === '/') return 'unknown'
  }
}
