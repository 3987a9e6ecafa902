// What `--isolate` needs of Linux that Swift's Glibc module does not give: descriptors passed
// over a Unix socket (the CMSG macros are not importable), relaxed atomics on memory shared
// with another process, memfd_create and gettid (_GNU_SOURCE), PR_SET_PDEATHSIG, and a crash
// signal handler that notes which thread crashed before the process dies.
#ifndef CYNIC_ISOLATION_H
#define CYNIC_ISOLATION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// The most descriptors one message carries.
#define CYNIC_MAX_PASSED_DESCRIPTORS 64

/// Sends `length` bytes as one message, with `count` descriptors (SCM_RIGHTS). 0, or -1 and errno.
int cynic_send_message(int socket, const void *bytes, size_t length, const int *descriptors, int count);

/// Receives one message into `bytes` (at most `capacity`) and up to `max_descriptors` descriptors,
/// made close-on-exec; `*count` says how many came. Returns the message's length, 0 at EOF, or
/// -1 and errno (EMSGSIZE: the message or its descriptors did not fit, and the descriptors that
/// came are closed).
ssize_t cynic_receive_message(int socket, void *bytes, size_t capacity, int *descriptors, int max_descriptors, int *count);

/// An anonymous file in memory, close-on-exec, or -1 and errno.
int cynic_memfd(const char *name);

/// The calling thread's kernel id.
int32_t cynic_thread_id(void);

/// This process gets SIGKILL when the thread that started it ends. 0, or -1 and errno.
int cynic_die_with_parent(void);

/// On SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT or SIGTRAP the crashing thread's id is stored at
/// `target` (memory another process reads after this one died); then the signal takes its default
/// action. `target` must stay mapped for the life of the process.
void cynic_note_crashing_thread(uint64_t *target);

static inline uint64_t cynic_load_relaxed(const uint64_t *word) { return __atomic_load_n(word, __ATOMIC_RELAXED); }
static inline void cynic_store_relaxed(uint64_t *word, uint64_t value) { __atomic_store_n(word, value, __ATOMIC_RELAXED); }

#endif
