#define _GNU_SOURCE
#include "CIsolation.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int cynic_send_message(int socket, const void *bytes, size_t length, const int *descriptors, int count) {
    if (count < 0 || count > CYNIC_MAX_PASSED_DESCRIPTORS) { errno = EINVAL; return -1; }
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int) * CYNIC_MAX_PASSED_DESCRIPTORS)]; } control;
    memset(&control, 0, sizeof control);
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = length };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    if (count > 0) {
        message.msg_control = control.space;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(header), descriptors, sizeof(int) * (size_t)count);
    }
    for (;;) {
        ssize_t sent = sendmsg(socket, &message, MSG_NOSIGNAL);
        if (sent >= 0) return 0;
        if (errno != EINTR) return -1;
    }
}

ssize_t cynic_receive_message(int socket, void *bytes, size_t capacity, int *descriptors, int max_descriptors, int *count) {
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int) * CYNIC_MAX_PASSED_DESCRIPTORS)]; } control;
    struct iovec vector = { .iov_base = bytes, .iov_len = capacity };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.space,
                              .msg_controllen = sizeof control.space };
    *count = 0;
    ssize_t received;
    do {
        received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    int truncated = (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int carried = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (int i = 0; i < carried; i++) {
            if (truncated || *count >= max_descriptors) {
                close(passed[i]);
            } else {
                descriptors[(*count)++] = passed[i];
            }
        }
    }
    if (truncated) {
        for (int i = 0; i < *count; i++) close(descriptors[i]);
        *count = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return received;
}

int cynic_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
}

int32_t cynic_thread_id(void) {
    return (int32_t)syscall(SYS_gettid);
}

int cynic_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

static uint64_t *crashing_thread;

/// Async-signal-safe: one syscall and one store. SA_RESETHAND put the default action back, so the
/// faulting instruction runs again on return and the process dies of the same signal (an abort
/// re-raises it itself).
static void note_crash(int signal) {
    (void)signal;
    if (crashing_thread) __atomic_store_n(crashing_thread, (uint64_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
}

void cynic_note_crashing_thread(uint64_t *target) {
    crashing_thread = target;
    static const int signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP };
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = note_crash;
    action.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &action, NULL);
}
