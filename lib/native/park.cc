// park.cc: holds V8's worker threads still while the main thread forks.
//
// After fork(2) only the calling thread exists. If a worker thread was waiting
// on V8's task-queue condition variable, the child's copy still counts it as a
// waiter, and signalling it can block forever inside glibc; if a worker held a
// lock, the child can never take it. So before forking we post to every worker
// a task that blocks in read(2) on a pipe: a parked worker holds no lock and
// waits on no condition variable. Closing the pipe's write end releases them all.
//
// This leans on Node 20's embedder API (node.h), not on N-API: there is no
// stable way to reach the platform's worker pool.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <memory>

#include <node.h>
#include <v8-platform.h>

#include "park.h"

namespace {

// How long the main thread waits for a busy worker to finish its task and park.
constexpr int kParkTimeoutMs = 2000;

// One round of parking. Each parked task holds a reference, so a task that
// starts late (after a timeout) still finds its pipes open, reads EOF and returns.
struct Round {
  int release[2] = {-1, -1};  // the tasks block reading [0]; closing [1] releases them
  int arrive[2] = {-1, -1};   // each task writes one byte to [1] once it is parked
  ~Round() {
    for (int fd : {release[0], release[1], arrive[0], arrive[1]})
      if (fd >= 0) close(fd);
  }
};

class ParkTask : public v8::Task {
 public:
  explicit ParkTask(std::shared_ptr<Round> round) : round_(std::move(round)) {}
  void Run() override {
    char byte = 1;
    while (write(round_->arrive[1], &byte, 1) < 0 && errno == EINTR) {}
    while (read(round_->release[0], &byte, 1) < 0 && errno == EINTR) {}  // blocks until EOF
  }

 private:
  std::shared_ptr<Round> round_;
};

std::shared_ptr<Round> current;  // the round now parked, if any
bool gone = false;               // true in a forked child: there are no workers to park

long now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Waits until `count` tasks have said they are parked; 0, or an errno value.
int await_arrivals(int fd, int count) {
  long deadline = now_ms() + kParkTimeoutMs;
  char bytes[64];
  while (count > 0) {
    long left = deadline - now_ms();
    if (left <= 0) return ETIMEDOUT;
    pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) return errno;
    if (ready <= 0) continue;
    ssize_t n = read(fd, bytes, count < 64 ? count : 64);
    if (n < 0 && errno != EINTR && errno != EAGAIN) return errno;
    if (n > 0) count -= static_cast<int>(n);
  }
  return 0;
}

}  // namespace

extern "C" int park_workers(void) {
  if (gone || current) return 0;
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return EINVAL;
  v8::HandleScope scope(isolate);
  node::Environment* env = node::GetCurrentEnvironment(isolate->GetCurrentContext());
  node::MultiIsolatePlatform* platform = env ? node::GetMultiIsolatePlatform(env) : nullptr;
  if (platform == nullptr) return EINVAL;
  // Node counts its delayed-task scheduler thread as a worker; it takes no tasks.
  int workers = platform->NumberOfWorkerThreads() - 1;

  auto round = std::make_shared<Round>();
  if (pipe2(round->release, O_CLOEXEC) < 0 || pipe2(round->arrive, O_CLOEXEC) < 0) return errno;
  for (int i = 0; i < workers; i++) platform->CallOnWorkerThread(std::make_unique<ParkTask>(round));
  current = round;
  int err = await_arrivals(round->arrive[0], workers);
  if (err != 0) unpark_workers();
  return err;
}

extern "C" void unpark_workers(void) {
  if (!current) return;
  close(current->release[1]);  // every parked read(2) returns 0
  current->release[1] = -1;
  current.reset();  // the last task to finish closes the rest
}

extern "C" void forget_workers(void) {
  gone = true;
  if (!current) return;
  // The parked tasks' copies of the reference live on in memory but will never
  // run down here, so the Round is never destroyed: close its pipes by hand.
  for (int* fd : {&current->release[0], &current->release[1], &current->arrive[0], &current->arrive[1]}) {
    close(*fd);
    *fd = -1;
  }
  current.reset();
}

// Not parking, but V8 through the same embedder API: a zygote gives back
// the memory its start-up used and no longer needs, so that each fork has
// fewer pages to share and to copy the page tables of.
extern "C" void release_heap_memory(void) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
}
