// Nothing: the child forked to time child_process.fork itself (forkcost.ts).
export {}
