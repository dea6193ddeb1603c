#pragma once
// Process-wide settings that syncd, sync-bridge and syncbench all start
// with: each serves or opens many connections through gRPC.

#include <sys/resource.h>

#include "absl/synchronization/mutex.h"

namespace sync_runtime {

// Every connection is a file descriptor: allow as many as the system lets
// the process have.
inline void raise_open_file_limit() {
  if (rlimit l{}; getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
}

// Debian's Abseil is built with its debug checks on, so every absl::Mutex
// lock (gRPC takes several per message) would also update a process-wide
// lock graph, under a global lock, looking for deadlock cycles: about 8% of
// syncd's CPU under load.
inline void skip_mutex_deadlock_checks() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace sync_runtime
