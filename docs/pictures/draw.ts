// Prints the picture at the top of the README from its script; `make pictures`
// writes it to docs/pictures/processes.svg. test/documents.ts fails when the
// committed file is stale.
import { processes } from './processes.js'

const main = (): number => {
  process.stdout.write(processes())
  return 0
}

process.exit(main())
