// The machine a run was measured on.
import { availableParallelism, cpus, release, totalmem, type } from 'node:os'
import { toolVersion } from './models.js'
import type { Machine } from './results.js'

export const describeMachine = (date: Date): Machine => ({
  cpuCount: availableParallelism(),
  cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
  os: `${type()} ${release()}`,
  memoryMB: Math.round(totalmem() / 2 ** 20),
  node: process.version,
  python: toolVersion('python3', ['--version']),
  cc: toolVersion('cc', ['--version']),
  date: date.toISOString(),
})
