/*  benchkit.h: small pieces the benchmark programs share. */
#ifndef RL_BENCHKIT_H
#define RL_BENCHKIT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

//  A free TCP port on 127.0.0.1 (bind port 0, read it, close), or -1. Another
//  process may take it before it is bound again: callers check that the
//  program they start really serves it.
static inline int
bench_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof (addr);
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, sizeof (addr)) == 0
        && getsockname (fd, (struct sockaddr *) &addr, &len) == 0) {
        port = ntohs (addr.sin_port);
    }
    if (fd >= 0) {
        close (fd);
    }
    return port;
}

#endif
