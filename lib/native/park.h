/* park.h: what fork.c needs from park.cc, the addon's C++ (C linkage, so that plain C can call it). */
#ifndef FORKSERVER_PARK_H
#define FORKSERVER_PARK_H
#ifdef __cplusplus
extern "C" {
#endif

/* Parks every V8 worker thread of this process; 0, or an errno value. */
int park_workers(void);
/* Lets the parked worker threads go on (in the parent, after fork). */
void unpark_workers(void);
/* In a forked child: the worker threads are not here; close what parked them. */
void forget_workers(void);
/* V8's LowMemoryNotification: full collections that give unused heap pages back to the kernel. */
void release_heap_memory(void);

#ifdef __cplusplus
}
#endif
#endif
