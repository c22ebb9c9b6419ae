// Thin wrappers over Linux calls that Glibc's Swift module does not export (epoll, eventfd, signalfd).
#ifndef SWITCHYARD_CSHIMS_H
#define SWITCHYARD_CSHIMS_H

#include <stdint.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One readiness event, flattened so Swift need not see the packed epoll_event.
typedef struct {
    uint32_t events;
    uint64_t token;
} sy_event;

enum {
    SY_EPOLLIN = 0x001,
    SY_EPOLLOUT = 0x004,
    SY_EPOLLERR = 0x008,
    SY_EPOLLHUP = 0x010,
    SY_EPOLLRDHUP = 0x2000,
};

int sy_epoll_create(void);
int sy_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int sy_epoll_mod(int epfd, int fd, uint32_t events, uint64_t token);
int sy_epoll_del(int epfd, int fd);
/// Waits for events; returns the count, 0 on timeout, -1 with errno set.
int sy_epoll_wait(int epfd, sy_event *events, int max, int timeout_ms);

/// A non-blocking, close-on-exec eventfd used to wake a loop from another thread.
int sy_eventfd(void);
int sy_eventfd_signal(int fd);
int sy_eventfd_drain(int fd);

/// Blocks the given signals in the calling thread (and threads it starts later)
/// and returns a non-blocking signalfd that reports them.
int sy_signalfd(const int *signals, int count);
/// Reads one signal number from a signalfd; returns 0 when none is pending.
int sy_signalfd_read(int fd);

/// Socket options the proxy sets on every TCP connection.
int sy_set_nodelay(int fd);
int sy_set_keepalive(int fd, int idle_s, int interval_s, int count);
int sy_set_nonblocking(int fd);
/// accept4 with SOCK_NONBLOCK and SOCK_CLOEXEC.
int sy_accept(int fd);

#ifdef __cplusplus
}
#endif
#endif
