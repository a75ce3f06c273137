// The fault tests of faults.ts (chaos under kill -9, the parent killed, the
// drain's deadlines, EMFILE) under --start zygote: the same test bodies,
// with FORKSERVER_TEST_STARTS naming the start (test/fixtures/starts.ts).
// Its tests that do not depend on the start run in faults.ts alone.
process.env.FORKSERVER_TEST_STARTS = 'zygote'
await import('./faults.js')
