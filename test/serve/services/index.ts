import t from 'tap'
import { SERVICE_NAMES, SERVICES, isServiceName } from '../../../lib/serve/services/index.js'

t.test('the five inetd classics, each loadable on demand', async (t) => {
  t.same([...SERVICE_NAMES].sort(), ['chargen', 'daytime', 'discard', 'echo', 'time'])
  for (const name of SERVICE_NAMES) t.type((await SERVICES[name]()).default, 'function', name)
})

t.test('only those names are services', async (t) => {
  t.ok(isServiceName('echo'))
  t.notOk(isServiceName('gopher'))
  t.notOk(isServiceName('toString'), 'not an inherited property')
})
