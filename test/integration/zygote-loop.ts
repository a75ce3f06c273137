// The accept-fork loop's tests of loop.ts under --start zygote: the same
// test bodies, with FORKSERVER_TEST_STARTS naming the start
// (test/fixtures/starts.ts). Its tests of child_process failures run in
// loop.ts alone.
process.env.FORKSERVER_TEST_STARTS = 'zygote'
await import('./loop.js')
